"""The instructors' tools: fixtures, verification, calibration, building the zips, the mutation audit,
scaffolding. May import every zone but the command line (the audit grades through autograder.regrade)."""
