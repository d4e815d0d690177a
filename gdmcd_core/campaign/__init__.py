"""Campaigns: the loop with the lab. A campaign gathers design runs' candidates, proposes batches to make and
measure, and stores the measured results (store: the SQLite database; lab_csv: the results file; propose: the next
batch). It sits above design and below the CLI.
"""
