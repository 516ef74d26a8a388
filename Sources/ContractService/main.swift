import ServiceKit

ServiceMain.run(.contracts)
