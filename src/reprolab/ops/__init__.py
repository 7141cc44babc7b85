"""Operating the project rather than computing in it: the smoke sandbox, local servers, queued
sweeps, remotes, review, tagging, runs, doctor and offline plots."""
