"""From results/<task>/<model>/metrics.json to a leaderboard and plots."""
