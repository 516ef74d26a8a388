import ServiceKit

ServiceMain.run(.records)
