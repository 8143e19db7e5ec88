"""Results and reports (layer 7 of 7): reading stored runs back for people.

The results table and its statistics (`results`), the leaderboard, the HTML report, trigger
previews and the runner of analysis tools (`analysis`). May import every layer below.
"""
