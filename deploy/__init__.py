"""Google Cloud deployment of mlops-events: configuration, set-up and function deploy commands.

Nothing here is imported by the functions at run time; it drives ``gcloud`` from a workstation
or a Cloud Build step.
"""
