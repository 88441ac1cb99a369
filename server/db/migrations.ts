/**
 * Versioned schema migrations, applied in order at start (see migrate() in database.ts). Never edit one that has
 * shipped: add the next. Plain statements only, each ending with a semicolon at the end of a line.
 * Money columns hold integer centavos (bigint).
 */
export const MIGRATIONS: { id: string; sql: string }[] = [
  {
    id: '001-checkouts-orders-payments',
    sql: `
CREATE TABLE checkouts (
  id text PRIMARY KEY,
  token_hash text NOT NULL,
  curp text NOT NULL,
  birth_date text NOT NULL,
  sex text NOT NULL,
  status text NOT NULL DEFAULT 'open',
  product text,
  quote jsonb,
  plan_count integer,
  contact jsonb,
  address jsonb,
  consents jsonb NOT NULL DEFAULT '{"terms": false, "privacy": false, "trust": false}',
  payment_method text,
  submit_claimed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX checkouts_curp ON checkouts (curp);

-- Evidence of every consent given or withdrawn: which document and version, when, from where.
CREATE TABLE consent_events (
  id bigserial PRIMARY KEY,
  checkout_id text NOT NULL REFERENCES checkouts (id),
  document text NOT NULL,
  version text NOT NULL,
  url text NOT NULL,
  accepted boolean NOT NULL,
  ip text,
  user_agent text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_events_checkout ON consent_events (checkout_id);

CREATE TABLE orders (
  id text PRIMARY KEY,
  reference text NOT NULL UNIQUE,
  checkout_id text NOT NULL UNIQUE REFERENCES checkouts (id),
  curp text NOT NULL,
  product text NOT NULL,
  kasu_product text,
  payment_method text NOT NULL,
  currency text NOT NULL,
  price_centavos bigint NOT NULL,
  instalments integer NOT NULL,
  instalment_centavos bigint NOT NULL,
  status text NOT NULL,
  policy text UNIQUE,
  kasu_status text,
  customer_name text,
  payment_link text,
  registration_attempts integer NOT NULL DEFAULT 0,
  last_error text,
  registered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_status ON orders (status);

CREATE TABLE payments (
  id text PRIMARY KEY,
  order_id text NOT NULL REFERENCES orders (id),
  provider text NOT NULL,
  status text NOT NULL,
  currency text NOT NULL,
  amount_centavos bigint NOT NULL,
  instalment_number integer NOT NULL DEFAULT 1,
  provider_reference text,
  payment_url text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (order_id, provider, instalment_number)
);

-- One row per (checkout, Idempotency-Key): the request's fingerprint and, once final, the answer to replay.
CREATE TABLE idempotency_keys (
  checkout_id text NOT NULL REFERENCES checkouts (id),
  key text NOT NULL,
  request_hash text NOT NULL,
  response_status integer,
  response_body jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (checkout_id, key)
);
`,
  },
  {
    id: '002-khipu-and-merchant-webhooks',
    sql: `
ALTER TABLE payments ADD COLUMN provider_status text;
ALTER TABLE payments ADD COLUMN paid_at timestamptz;
ALTER TABLE payments ADD COLUMN expires_at timestamptz;
ALTER TABLE payments ADD COLUMN next_check_at timestamptz;
ALTER TABLE payments ADD COLUMN refunded_centavos bigint NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX payments_provider_reference ON payments (provider, provider_reference) WHERE provider_reference IS NOT NULL;
CREATE INDEX payments_pending_checks ON payments (status, next_check_at);

-- Every payment notification received, whatever came of it (paid, duplicate, mismatch, unknown token).
CREATE TABLE payment_notifications (
  id bigserial PRIMARY KEY,
  provider text NOT NULL,
  notification_token text NOT NULL,
  api_version text,
  outcome text NOT NULL,
  payment_id text,
  provider_payment_id text,
  detail jsonb,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_notifications_token ON payment_notifications (provider, notification_token);

-- Merchant webhooks: an outbox of events, one delivery per event and endpoint, and a log of every attempt.
CREATE TABLE webhook_events (
  id text PRIMARY KEY,
  type text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE webhook_deliveries (
  id bigserial PRIMARY KEY,
  event_id text NOT NULL REFERENCES webhook_events (id),
  url text NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_until timestamptz,
  last_status integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE TABLE webhook_attempts (
  id bigserial PRIMARY KEY,
  delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id),
  attempt integer NOT NULL,
  response_status integer,
  error text,
  duration_ms integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    id: '003-card-subscriptions',
    sql: `
-- A tokenised card: only the gateway's token, brand and last 4 digits. Never a card number, CVV or expiry.
CREATE TABLE payment_cards (
  id text PRIMARY KEY,
  order_id text NOT NULL REFERENCES orders (id),
  customer_id text NOT NULL,
  token text NOT NULL,
  brand text NOT NULL,
  last4 text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscriptions (
  id text PRIMARY KEY,
  order_id text NOT NULL UNIQUE REFERENCES orders (id),
  card_id text NOT NULL REFERENCES payment_cards (id),
  status text NOT NULL,
  pay_day integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  cancelled_at timestamptz
);

-- Each instalment is also its own queue entry: due when next_attempt_at has come and no lease holds it.
CREATE TABLE instalments (
  id text PRIMARY KEY,
  subscription_id text NOT NULL REFERENCES subscriptions (id),
  number integer NOT NULL,
  currency text NOT NULL,
  amount_centavos bigint NOT NULL,
  due_date text NOT NULL,
  status text NOT NULL,
  declines integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  locked_until timestamptz,
  lease_token text,
  paid_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (subscription_id, number)
);
CREATE INDEX instalments_due ON instalments (status, next_attempt_at);

-- Every charge sent to the gateway, written before the call: its merchantOrderId is what makes a retry safe.
CREATE TABLE charge_attempts (
  id bigserial PRIMARY KEY,
  instalment_id text NOT NULL REFERENCES instalments (id),
  attempt integer NOT NULL,
  merchant_order_id text NOT NULL UNIQUE,
  status text NOT NULL,
  sends integer NOT NULL DEFAULT 0,
  response_code text,
  response_description text,
  authorization_number text,
  reference_number text,
  gateway_order_id text,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (instalment_id, attempt)
);
`,
  },
  {
    id: '004-tupay-ledger-and-reconciliation',
    sql: `
-- Tupay's deposits and cash-outs as last read, upserted by id; amounts in centavos, dates as instants.
CREATE TABLE tupay_records (
  kind text NOT NULL,
  id text NOT NULL,
  external_id text,
  created_at timestamptz NOT NULL,
  last_change_at timestamptz,
  last_change_date text NOT NULL DEFAULT '',
  status text NOT NULL,
  currency text,
  amount_centavos bigint NOT NULL,
  local_currency text,
  local_amount_centavos bigint,
  fee_centavos bigint,
  country text,
  payment_method text,
  reason text,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, id)
);
CREATE INDEX tupay_records_external ON tupay_records (external_id);
CREATE INDEX tupay_records_created ON tupay_records (kind, created_at);

-- Every version of a Tupay record we have seen: its first sight, then each change (EXPIRED → COMPLETED, …).
CREATE TABLE tupay_record_versions (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  record_id text NOT NULL,
  version_key text NOT NULL,
  status text NOT NULL,
  previous_status text,
  amount_centavos bigint NOT NULL,
  currency text,
  last_change_at timestamptz,
  observed_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (kind, record_id, version_key)
);
CREATE INDEX tupay_record_versions_observed ON tupay_record_versions (observed_at);

CREATE TABLE reconciliation_reports (
  id text PRIMARY KEY,
  trigger text NOT NULL,
  daily_for text UNIQUE,
  period_from timestamptz NOT NULL,
  period_to timestamptz NOT NULL,
  status text NOT NULL,
  previous_report_id text,
  tupay jsonb,
  summary jsonb,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
CREATE INDEX reconciliation_reports_completed ON reconciliation_reports (status, created_at);

-- One row per payment line (any rail) and per unpaid order of a report, with its category.
CREATE TABLE reconciliation_lines (
  report_id text NOT NULL REFERENCES reconciliation_reports (id) ON DELETE CASCADE,
  seq integer NOT NULL,
  category text NOT NULL,
  rail text NOT NULL,
  kind text NOT NULL,
  line_id text NOT NULL,
  order_reference text,
  provider_status text,
  state text NOT NULL,
  previous_status text,
  reversal boolean NOT NULL DEFAULT false,
  currency text,
  amount_centavos bigint,
  expected_centavos bigint,
  fee_centavos bigint,
  refunded_centavos bigint,
  instalment_number integer,
  occurred_at timestamptz,
  changed_at timestamptz,
  PRIMARY KEY (report_id, seq)
);
CREATE INDEX reconciliation_lines_key ON reconciliation_lines (report_id, rail, kind, line_id);
CREATE INDEX reconciliation_lines_category ON reconciliation_lines (report_id, category, seq);
`,
  },
  {
    id: '005-rate-limits',
    sql: `
-- Request counters of the rate limits, shared by every instance: one row per bucket (what is limited), key (whose
-- requests: a hashed client IP, a checkout id) and fixed window; incremented with one atomic upsert. Windows that
-- have ended are deleted as instances go.
CREATE TABLE rate_limit_hits (
  bucket text NOT NULL,
  key text NOT NULL,
  window_start timestamptz NOT NULL,
  hits integer NOT NULL,
  PRIMARY KEY (bucket, key, window_start)
);
CREATE INDEX rate_limit_hits_window ON rate_limit_hits (window_start);
`,
  },
  {
    id: '006-khipu-lost-creations',
    sql: `
-- Khipu creation calls whose outcome is unknown (timeout, reset, a broken answer, a 5xx other than Khipu's 503, a
-- process that died mid-call): Khipu may hold a payment of ours we never heard of. It is still recognised as ours by
-- its custom field (our payment id) when it is paid.
ALTER TABLE payments ADD COLUMN unknown_creations integer NOT NULL DEFAULT 0;

-- A provider payment of ours that was paid but cannot count for its payment (already paid through another provider
-- payment, or cancelled): the money is to be refunded or settled by a person, never counted as an instalment.
CREATE TABLE payment_reviews (
  provider text NOT NULL,
  provider_reference text NOT NULL,
  payment_id text NOT NULL REFERENCES payments (id),
  reason text NOT NULL,
  status text NOT NULL DEFAULT 'needs_review',
  currency text NOT NULL,
  amount_centavos bigint NOT NULL,
  paid_at timestamptz,
  detail jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, provider_reference)
);
CREATE INDEX payment_reviews_payment ON payment_reviews (payment_id);
CREATE INDEX payment_reviews_status ON payment_reviews (status, created_at);
`,
  },
];
