"""The commands of `bdb`, one module per group: catalog (list, plugins, doctor, info, install), runs
(attack, defend, preview, bench, demo, download) and results (results, report, analyze)."""
