"""The small core every stage stands on: params base types and error text, tracking (Run), the
registry, lineage, io, paths and layout, metrics, saving pyfunc models, distributed set-up and
signals. Nothing here imports a workload."""
