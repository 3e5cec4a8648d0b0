-- A small Odoo-shaped database: the tables Vigia reads, with data in each.
CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, state varchar, latest_version varchar);
INSERT INTO ir_module_module (name, state, latest_version) VALUES
  ('base', 'installed', '19.0.1.3'), ('account', 'installed', '19.0.1.2'),
  ('l10n_cr_einvoice', 'installed', '19.0.2.1.0'), ('website', 'uninstalled', NULL);
CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar NOT NULL, vat varchar, l10n_cr_economic_activity_id int);
INSERT INTO res_partner (name, vat) SELECT 'Cliente ' || g, lpad(g::text, 9, '3') FROM generate_series(1, 50) g;
CREATE TABLE ir_attachment (id serial PRIMARY KEY, name varchar, res_model varchar, store_fname varchar, checksum varchar(40), db_datas bytea);
CREATE TABLE l10n_cr_einvoice_document (id serial PRIMARY KEY, clave varchar(50) UNIQUE, state varchar, document_type varchar, amount_total numeric(12,2), create_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'));
INSERT INTO l10n_cr_einvoice_document (clave, state, document_type, amount_total)
  SELECT '506281126003101123456' || lpad(g::text, 20, '0') || '1' || lpad(g::text, 8, '0'), 'accepted', 'FE', g * 1000
  FROM generate_series(1, 20) g;
