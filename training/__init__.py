"""The training harness: run folders, callbacks, devices, model save and safe load."""
