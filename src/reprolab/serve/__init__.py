"""`reprolab serve`: one HTTP service in front of the registry.

Each registry task's model is served by alias (`champion` by default) and swapped in the
background when the alias moves; causal LMs also answer OpenAI-compatible routes. The app is
built by `app.create_app(settings)`; nothing here holds global state, so tests build as many
apps as they like."""
