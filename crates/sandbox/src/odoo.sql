-- A small Odoo-shaped database: the tables Vigia reads, with data in each.
CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, state varchar, latest_version varchar);
INSERT INTO ir_module_module (name, state, latest_version) VALUES
  ('base', 'installed', '19.0.1.3'), ('account', 'installed', '19.0.1.2'),
  ('l10n_cr_einvoice', 'installed', '19.0.2.1.0'), ('website', 'uninstalled', NULL);
CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar NOT NULL, vat varchar, l10n_cr_economic_activity_id int);
INSERT INTO res_partner (name, vat) SELECT 'Cliente ' || g, lpad(g::text, 9, '3') FROM generate_series(1, 50) g;
CREATE TABLE ir_attachment (id serial PRIMARY KEY, name varchar, res_model varchar, res_field varchar, res_id int, store_fname varchar, checksum varchar(40), db_datas bytea);
CREATE TABLE l10n_cr_einvoice_document (id serial PRIMARY KEY, clave varchar(50) UNIQUE, state varchar, document_type varchar, amount_total numeric(12,2), create_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'));
INSERT INTO l10n_cr_einvoice_document (clave, state, document_type, amount_total)
  SELECT '506281126003101123456' || lpad(g::text, 20, '0') || '1' || lpad(g::text, 8, '0'), 'accepted', 'FE', g * 1000
  FROM generate_series(1, 20) g;
CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar NOT NULL UNIQUE, value text NOT NULL);
INSERT INTO ir_config_parameter (key, value) VALUES
  ('database.uuid', '8a3c3e52-1f9e-4a51-9c55-2f5f6f0c9d11'), ('database.create_date', '2025-01-06 14:02:11'),
  ('web.base.url', 'https://erp.example.cr'), ('l10n_cr_einvoice.hacienda_api_token', 'eyJhbGciOi-live-token');
CREATE TABLE ir_model_data (id serial PRIMARY KEY, module varchar NOT NULL, name varchar NOT NULL, model varchar NOT NULL, res_id int);
CREATE TABLE ir_cron (id serial PRIMARY KEY, cron_name varchar NOT NULL, active boolean, interval_number int, interval_type varchar);
INSERT INTO ir_cron (cron_name, active, interval_number, interval_type) VALUES
  ('Base: Auto-vacuum internal data', true, 1, 'days'), ('Hacienda: submit signed documents', true, 5, 'minutes'),
  ('Hacienda: check document status', true, 10, 'minutes'), ('Mail: Email Queue Manager', true, 1, 'hours');
INSERT INTO ir_model_data (module, name, model, res_id) VALUES ('base', 'autovacuum_job', 'ir.cron', 1);
CREATE TABLE ir_mail_server (id serial PRIMARY KEY, name varchar NOT NULL, smtp_host varchar, smtp_port int, smtp_encryption varchar NOT NULL, smtp_authentication varchar, smtp_user varchar, smtp_pass varchar, active boolean);
INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, smtp_authentication, smtp_user, smtp_pass, active)
  VALUES ('Facturacion', 'smtp.office365.com', 587, 'starttls', 'login', 'facturas@example.cr', 'live-smtp-password', true);
CREATE TABLE fetchmail_server (id serial PRIMARY KEY, name varchar NOT NULL, server varchar, active boolean);
INSERT INTO fetchmail_server (name, server, active) VALUES ('Recepcion de comprobantes', 'imap.example.cr', true);
-- The e-invoicing module's company fields (its models/res_company.py, DOMAIN.md section 3).
CREATE TABLE res_company (id serial PRIMARY KEY, name varchar NOT NULL, vat varchar,
  l10n_cr_hacienda_env varchar DEFAULT 'sandbox', l10n_cr_hacienda_username varchar,
  l10n_cr_hacienda_password varchar, l10n_cr_key_password varchar,
  l10n_cr_certificate_filename varchar, l10n_cr_private_key_filename varchar,
  l10n_cr_auto_submit_einvoice boolean DEFAULT false, l10n_cr_auto_send_email boolean DEFAULT true);
INSERT INTO res_company (name, vat, l10n_cr_hacienda_env, l10n_cr_hacienda_username,
    l10n_cr_hacienda_password, l10n_cr_key_password, l10n_cr_certificate_filename,
    l10n_cr_private_key_filename, l10n_cr_auto_submit_einvoice)
  VALUES ('Soluciones GMS S.A.', '3101123456', 'production',
    'cpj-3-101-123456@prod.comprobanteselectronicos.go.cr', 'live-hacienda-password', '1234',
    'llave.p12', 'llave.pem', true);
