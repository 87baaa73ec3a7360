"""INSEE's SIRENE register, as structure reads it: which establishment a SIRET is, and which
companies a name, SIREN or SIRET designates.

- `model`: what every source answers (`Establishment`, `CompanyHit`…) and `SourceUnavailable`;
- `addresses`: INSEE's codes written out as a postal address, and a legal unit's name;
- `stock_files`, `stock_rows`, `stock_import`, `stock_progress`, `stock`: the monthly stock
  files, read and imported into an embedded SQLite store (`make sirene-import`) that every
  structure process reads;
- `insee`, `recherche`: the INSEE API Sirene 3.11 and recherche-entreprises, over HTTP, within a
  request budget shared in Redis (`http_budget`);
- `sources`: the sources in SIRENE_SOURCE's order, and what their answers mean together.
"""
