"""One package per feature, every one the same shape:

- `__init__.py`: the blueprint, `bp`, whose URL prefix is the feature's name (with
  hyphens for underscores), and its views. Views stay thin: the rules are in
  domain/<feature>.py, the pages in templates/<feature>/.
- `forms.py`: the feature's forms, when it has any.

Nothing else: no views.py beside __init__.py. The staff side is one package whose
features (staff/accounts, staff/queues, ...) have the same shape, with the one
look-up they share in staff/lookups.py. A view whose URL names an account
(`<account:number>`) declares what it needs with `@account_route(...)`
(web.access); ids in URLs are `<id:...>` (web.converters).
"""
