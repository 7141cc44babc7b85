"""The one training-loop kit every torch family uses: the learning-rate schedule, early
stopping on a validation metric, resumable checkpoints (one format, one place) and the
thread/device set-up. Each family keeps its own step (nanoGPT-style, readable in one sitting);
what is common to all of them lives here once."""
