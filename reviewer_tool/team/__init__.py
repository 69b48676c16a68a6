"""Team updates: one reviewer's triage, labels, notes and replies, signed and sealed for the others.

Several reviewers work one inbox, each on an offline workstation. What one of
them decides about a report travels to the others as a signed event sealed
to every reviewer key of the organisation's key directory, carried by the
same bundles as the reports (crypto/SPEC.md §17); each workstation merges
the events it admits into the same state, whatever order they arrive in.
"""
