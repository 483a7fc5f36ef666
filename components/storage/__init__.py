"""Model storage and download: the volume, the download Job, and the check of the Secrets it reads."""
