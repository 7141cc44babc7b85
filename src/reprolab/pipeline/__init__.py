"""What each DVC stage does, as plain functions of (name, Params): testable without DVC.
The Click scripts in stages/ only parse arguments and call these."""
