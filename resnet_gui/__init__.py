"""ResNet GUI: desktop image classification with ResNet models."""

__version__ = "0.1.0"
APP_NAME = "ResNet GUI"
APP_ID = "resnet-gui"  # used for platformdirs folders and the executable name
