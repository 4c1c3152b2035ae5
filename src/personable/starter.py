"""The commented personable.yaml that `personable init` writes: every section
with its defaults and what it does, kept beside the schema in config.py."""

STARTER = """\
# yaml-language-server: $schema=.personable/personable.schema.json
# personable project configuration -- configuration as code, review it in git.
# Editors with the YAML language server check it against the schema named above;
# `personable config check` does too, and `personable config schema` prints it.
# Every value can be overridden from the environment: PERSONABLE_<SECTION>__<KEY>,
# e.g. PERSONABLE_SERVER__PORT=9000. Secrets never belong in this file: write keys
# and the admin token live in .personable/keys.json (created by `personable init`,
# readable only by you) or in PERSONABLE_WRITE_KEY_<SOURCE> / PERSONABLE_ADMIN_TOKEN.
name: {name}

# Where data lives. Adapters are chosen by URL scheme; relative paths are
# relative to this folder. The embedded default needs no server at all.
store:
  offline: duckdb:///.personable/store.duckdb   # event log + analytical tables
  online: sqlite:///.personable/online.sqlite   # profile documents for fast lookups, kept current by
                                                # the write path; duckdb:// reads the offline file instead
  bus: file:///.personable/bus                  # durable event log: the HTTP path acknowledges once an
                                                # event is here; a worker moves it into the store.
                                                # memory:// writes to the store on the request path instead

# Event sources. Each has its own write key (HTTP Basic auth user, as Segment does).
sources:
  - web
  - server

server:
  host: 127.0.0.1
  port: 8787
  max_body_bytes: 5000000       # larger request bodies get a 413 (RudderStack batches reach 4 MB)
  header_timeout_s: 10          # a request's line and headers must arrive within this, else 408 and close
  body_timeout_s: 30            # ... and its whole body within this after them, else 408
  commit_interval_ms: 2         # group-commit window; an event is acknowledged once durable
  store_interval_ms: 1000      # once caught up, the log worker lets a batch gather this long (fresh reads skip it)
  store_threads: 1              # DuckDB threads while serving: leaves cores for requests (0: all)
  store_process: true           # the store and its worker in their own process (docs/architecture.md); false: one
  store_nice: 0                 # with store_process: the store process's niceness (0-19; higher leaves requests more CPU)
  import_dir: imports           # the server reads imported files only from here (relative: to the project)
  export_dir: exports           # ... and writes segment exports only here

events:
  max_future_skew_hours: 24     # timestamps further ahead than this are rejected
  order_event: Order Completed  # what counts as an order, for profiles, RFM, lifecycle, models, recommendations

# Identity stitching: userId, anonymousId and alias always link; the traits below
# link profiles too (normalized, then SHA-256 hashed before they are stored).
identity:
  default_region: US            # for phone numbers written without a country code
  max_user_ids_per_profile: 1   # an identify never merges two known users (alias can)
  max_ids_per_identifier: 20    # an email / phone carried by more user + anonymous ids is
                                # shared (a switchboard): it links nothing, and is reported
  identifiers:
    - trait: email
      kind: email
    - trait: phone
      kind: phone
  junk_values:                  # in addition to the built-in list (null, undefined, 0, ...)
    - test@test.com
    - "0000000000"
  # Probabilistic resolution (`personable resolve`): finds the same person behind
  # profiles no shared id links (typos, a CRM duplicate without an email, ...).
  resolution:
    fields:                     # trait: how two values are compared
      first_name: name          # exact, then Jaro-Winkler levels
      last_name: name
      email: email              # exact, then the user name, then fuzzy
      phone: phone              # exact, then Levenshtein <= 1, <= 2
      birth_date: date          # exact, typo, within a month / a year / ten years
      postcode: postcode
      city: text
      country: exact
    blocking:                   # candidate pairs agree on every field of one rule
      - [email]
      - [phone]
      - [first_name, last_name]
      - [birth_date, first_name]
      - [birth_date, last_name]
      - [birth_date, postcode]
    match_probability: 0.95     # at or above: merged (and explained, and undoable)
    review_probability: 0.6     # between the two: `personable resolve review`
    max_shared: 5               # an email or phone on more records is not evidence
    max_cluster_size: 10        # a bigger cluster is blocked and reported, not merged

# How traits merge when several sources disagree.
traits:
  default_policy: last_write_wins   # by event time; or first_write_wins
  policies:
    first_source: first_write_wins

sessions:
  timeout_minutes: 30

# Data quality: how each trait is standardized on ingest (and by `personable
# quality clean` over what is stored), the rules a record must pass (failing
# records are kept with the field flagged invalid; on_invalid: quarantine sends them
# to quarantine, naming the rule), and
# what fills a missing value (`personable quality impute`; imputed values are
# marked as such and give way to the first real observation).
quality:
  reporting_currency: USD
  currency_rates:               # 1 unit of the currency in the reporting currency
    EUR: 1.08
    GBP: 1.27
  fields:
    email:
      standardize: email        # lower-case, syntax checked
      rules: {{unique: true, freshness: 730d}}
    phone:
      standardize: phone        # E.164
      region_from: country      # local numbers are read in the record's country
    first_name: {{standardize: name, rules: {{required: true}}}}
    last_name: {{standardize: name}}
    country:
      standardize: country      # ISO 3166 alpha-2
      missing: {{derive: country_from_phone}}
    birth_date:
      standardize: date         # ISO 8601; ISO input, then these formats, in order
      formats: ["%d/%m/%Y", "%m-%d-%Y"]
      rules: {{min: "1900-01-01", max: today}}
    signup_date:
      standardize: date
      formats: ["%d/%m/%Y", "%m-%d-%Y"]
    city: {{standardize: name}}
    postcode: {{standardize: text}}

# Segments: rules on traits, computed traits (revenue, order_count, last_seen,
# rfm_segment, lifecycle_stage, cluster, ...) and behaviour. Membership is
# updated as events arrive and by a full refresh every
# scheduler.segments_refresh_minutes; see docs/segments.md.
segments:
  big_spenders:
    name: Big spenders
    rule: {{computed: revenue, gt: 300}}
  high_value_at_risk:
    name: High-value customers at risk
    description: big spenders who ordered twice in 90 days, but not in the last 21
    rule:
      all:
        - in_segment: big_spenders
        - {{event: Order Completed, count: {{gte: 2}}, within: 90d}}
        - not: {{event: Order Completed, within: 21d}}
  cart_abandoners:
    name: Abandoned a cart this week
    rule:
      all:
        - {{event: Product Added, within: 7d}}
        - not: {{event: Order Completed, within: 7d}}
  champions:
    rule: {{computed: rfm_segment, eq: Champions}}

scheduler:
  segments_refresh_minutes: 15  # RFM, lifecycle, clusters' assignment, then every segment
  realtime_segments_interval_ms: 1000  # under `personable serve`, profiles touched by events are
                                       # re-judged this often (a fresh=true read waits for it)
  models_maintain_hours: 24     # retrain / drift check / score the models under models.maintain

# Predictive models (docs/models.md): `personable models train churn`, then
# `personable models score churn` writes churn_risk on every profile.
models:
  horizon_days: 30              # how far ahead churn, CLV and next purchase look
  drift: {{psi: 0.2, ks_pvalue: 0.01}}  # a feature or score drifted past either line
  maintain: {{}}                  # opt-in, e.g. churn: {{retrain_days: 7, retrain_on_drift: true}}

# RFM (recency, frequency, monetary; quintile scores 1-5 and named segments) and
# lifecycle stages become computed traits on every profile.
lifecycle:
  new_days: 30                  # first order at most this long ago
  active_days: 90               # last order at most this long ago
  lapsed_days: 180              # longer ago: lapsed (between: at_risk)
  loyal_orders: 3               # active with at least this many orders
  reactivated_days: 30          # ordered this recently after a gap longer than lapsed_days

# Recommendations (docs/recommendations.md): `personable recommend catalog
# catalog.csv`, `personable recommend train`, then GET /v1/recommendations/{{id}}.
recommend:
  weights: {{Product Viewed: 1, Product Added: 3, Order Completed: 5}}
  generators: [als, ease, cooccurrence, complementary, content, same_category, trending, popularity]
  top_n: 50                     # precomputed per profile
  retrain_hours: 0              # under `personable serve`, retrain this often (0: by hand, `recommend train`)
  fallback_group: rfm_segment   # cold start: popular among profiles in the same RFM segment
  placements:
    home: {{n: 10, max_per_category: 3, diversity: 0.3}}
    cart: {{n: 6, exclude_purchased: false}}

# Consent per purpose, enforced at every use (docs/privacy.md): recommendations,
# model training and scoring, segment exports ask the policy; refusals are
# counted (`personable privacy refusals`).
privacy:
  policy_version: "1"           # recorded with every consent change
  purposes: [analytics, personalization, marketing_email, marketing_sms, advertising, sale_or_share]
  categories:                   # consent category names (Segment's categoryPreferences) -> purposes
    Marketing: [marketing_email, marketing_sms]
    Advertising: [advertising]
    DataSharing: [sale_or_share]
    Analytics: [analytics]
    Personalization: [personalization]
    Functional: [personalization]
    email_marketing: [marketing_email]
    sms_marketing: [marketing_sms]
  gpc_denies: [sale_or_share]   # what a browser's Sec-GPC: 1 withdraws
  region_trait: country         # the profile trait with its ISO country code; regions: {{eu: [DE, FR, ...]}}
  unknown_country_region: null  # whose defaults apply when the country is unknown (null: "*")
  defaults:                     # consent when none is recorded: per region, "*" for the rest; absent: refused
    analytics: {{"*": true}}
    personalization: {{"*": true}}
    marketing_email: {{eu: false, "*": true}}   # opt-in in the EU (GDPR), opt-out elsewhere (CCPA)
    marketing_sms: {{eu: false, "*": true}}
    advertising: {{eu: false, "*": true}}
    sale_or_share: {{eu: false, "*": true}}
  collection_refused: minimize  # events of a profile refused for collection: minimize (counts only), drop, keep
  retention:                    # how long data is kept (days; null: forever); serve runs it daily
    events: {{}}                  # per event type or track event name, e.g. {{page: 395, "*": null}}
    mode: anonymize             # expired events: anonymize (kept as counts, no ids) or delete
    quarantine_days: 30
  dp: {{budget: 10, k: 10}}       # anonymized releases: the project's total epsilon, and the smallest cell shown
  uses:                         # the purpose each use asks for
    collection: analytics
    recommendations: personalization
    training: analytics
    scoring: personalization
    segment_export: advertising

# Column mappings for `personable ingest --kind crm|orders` (file column: field).
imports:
  crm:
    user_id: customer_id
    email: email
    phone: phone
    first_name: first_name
    last_name: last_name
    country: country
    timestamp: updated_at
  orders:
    user_id: customer_id
    order_id: order_id
    revenue: total
    currency: currency
    timestamp: ordered_at
"""
