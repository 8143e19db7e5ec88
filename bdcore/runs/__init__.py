"""The run store (layer 4 of 7): where runs, their ids and their artifacts live.

The content-addressed run store and its SQLite index (`store`, `index`), run ids from resolved
configs (`identity`), the per-method artifact cache (`artifacts`), and which runs belong to which
grid (`grid_membership`). May import errors, config, data, nn and api.
"""
