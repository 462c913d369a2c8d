"""Operations commands for the app's data (seeding, rebuilding projections): `python -m ops --help`."""
