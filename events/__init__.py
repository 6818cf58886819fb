"""Pure event handling: CloudEvent -> typed event -> routing rules -> Decision.

Nothing here does I/O, reads the environment or imports Google Cloud or kfp.
"""
