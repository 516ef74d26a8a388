import ServiceKit

ServiceMain.run(.stats)
