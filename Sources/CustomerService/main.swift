import ServiceKit

ServiceMain.run(.customers)
