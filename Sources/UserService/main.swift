import ServiceKit

ServiceMain.run(.users)
