"""Platform tests: each platform on its real peer, and the contract they all meet."""
