"""``python -m osfs`` runs the command line."""

from osfs.cli import main

raise SystemExit(main())
