"""`reprolab retrain TASK`: bring in a new data drop, rerun the task's part of the pipeline,
let the registry's gate decide on the validation split, and tell people what happened.

validate (drop.py: the same checks as prepare; DVC-tracked, pinned in params.yaml; drift.py)
-> train (`dvc repro` up to evaluation) -> gate (`dvc repro` of register and infer)
-> notify (notify.py: stdout and a Slack-compatible webhook). steps.py runs them in order
and keeps what each found in a state file, so an orchestrator can run them one by one."""
