"""The media leg: monitoring state (who watches which live session) and the worker side that
fans a call's media out to monitoring supervisors (docs/recording.md, "The media leg")."""
