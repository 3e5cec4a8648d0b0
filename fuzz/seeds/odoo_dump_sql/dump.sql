--
-- PostgreSQL database dump
--

\restrict a1B2c3D4e5F6

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SELECT pg_catalog.set_config('search_path', '', false);

CREATE TABLE public.res_partner (
    id integer NOT NULL,
    name character varying
);

COPY public.res_partner (id, name) FROM stdin;
1	My Company
2	\\N backslash\tin data
\.

SELECT pg_catalog.setval('public.res_partner_id_seq', 2, true);

\unrestrict a1B2c3D4e5F6
