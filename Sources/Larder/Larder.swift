@_exported public import LarderStorage
