"""Small generated data files, each next to the script that regenerates it."""
