"""The Qt desktop app. Thin client of resnet_gui.core; heavy work runs in worker threads (common/workers.py)."""
