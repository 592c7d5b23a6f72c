"""Command line faces over the library: each module registers its commands."""
