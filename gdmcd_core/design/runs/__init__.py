"""Run folders: folder.py (the format, `RunWriter`, listing and loading), lock.py, meta.py (name and tags), state.py
(state.npz), progress.py (the folder kept current while the loop runs), result.py (`DesignResult`), resume.py
(finalize or resume a stopped run)."""
