/*
 * tls.c - the server certificate for HTTPS, swappable while jobd runs.
 *
 * Loop thread only (libmicrohttpd runs its handshakes from MHD_run on the
 * loop, and SIGHUP is a loop event).
 *
 * Why a certificate callback and not MHD_OPTION_HTTPS_MEM_CERT: MHD loads
 * a memory certificate once, into credentials of its own, and cannot swap
 * it; the alternative, a second MHD daemon on the same listening socket
 * after a reload, would have to run both daemons until the old one's
 * connections (long-polls among them) are gone, and share the connection
 * limits between them. With MHD_OPTION_HTTPS_CERT_CALLBACK, GnuTLS asks us
 * for the certificate at each handshake, and we answer with the current
 * one: a reload is a pointer swap, and nothing else moves.
 *
 * What the callback hands out must stay valid for the session that got it
 * (GnuTLS keeps the pointers until the session ends), and the callback is
 * not told which connection it serves. So each generation of credentials
 * counts the connections opened while it was current; a replaced
 * generation is freed once it and every older one have no connection left
 * (a connection may have been handed any generation that was current
 * between its opening and its handshake, never an older one).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "daemon/log.h"
#include "daemon/tls.h"

/* Most certificates in a chain file (leaf and intermediates). */
#define MAX_CHAIN 16

struct creds {
	gnutls_pcert_st pcert[MAX_CHAIN];
	unsigned npcert;
	gnutls_privkey_t key;
	char desc[512];
	size_t conns;       /* open connections that started while this was current */
	struct creds *next; /* newer generation; NULL for the current one */
};

/* Oldest generation still alive, and the current one (the newest). */
static struct creds *oldest, *current;

static void creds_free(struct creds *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->npcert; i++)
		gnutls_pcert_deinit(&c->pcert[i]);
	if (c->key)
		gnutls_privkey_deinit(c->key);
	free(c);
}

/* Free the replaced generations no connection can be using any more. */
static void sweep(void)
{
	while (oldest && oldest != current && oldest->conns == 0) {
		struct creds *c = oldest;
		oldest = c->next;
		creds_free(c);
	}
}

int jd_tls_check_priorities(const char *prio, char *err, size_t errlen)
{
	gnutls_priority_t p;
	const char *at = NULL;
	int r = gnutls_priority_init(&p, prio, &at);
	if (r < 0) {
		snprintf(err, errlen,
			 "tls_priorities: \"%s\" is not a GnuTLS priority string (%s%s%s)", prio,
			 gnutls_strerror(r), at ? " at: " : "", at ? at : "");
		return -EINVAL;
	}
	gnutls_priority_deinit(p);
	return 0;
}

/* Subject, serial and validity of the leaf, for the log; warns when it is
 * not valid now. */
static void describe(struct creds *c, const char *path)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = { NULL, 0 };
	unsigned char serial[64];
	size_t slen = sizeof(serial);
	char hex[2 * sizeof(serial) + 1] = "?", until[32] = "?";

	if (gnutls_x509_crt_init(&crt) < 0) {
		snprintf(c->desc, sizeof(c->desc), "%s", path);
		return;
	}
	if (gnutls_x509_crt_import(crt, &c->pcert[0].cert, GNUTLS_X509_FMT_DER) == 0) {
		gnutls_x509_crt_get_dn3(crt, &dn, 0);
		if (gnutls_x509_crt_get_serial(crt, serial, &slen) == 0)
			for (size_t i = 0; i < slen; i++)
				snprintf(hex + 2 * i, 3, "%02x", serial[i]);
		time_t now = time(NULL);
		time_t exp = gnutls_x509_crt_get_expiration_time(crt);
		time_t act = gnutls_x509_crt_get_activation_time(crt);
		struct tm tm;
		if (exp != (time_t)-1 && gmtime_r(&exp, &tm))
			strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (exp != (time_t)-1 && exp < now)
			jd_warn("tls: the certificate in %s expired at %s; clients will refuse it",
				path, until);
		else if (act != (time_t)-1 && act > now)
			jd_warn(
			    "tls: the certificate in %s is not valid yet; clients will refuse it",
			    path);
	}
	snprintf(c->desc, sizeof(c->desc), "%s (subject %s, serial %s, valid until %s)", path,
		 dn.data ? (const char *)dn.data : "?", hex, until);
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
}

/* Whether the private key belongs to the leaf certificate. */
static int key_matches(struct creds *c)
{
	unsigned char a[64], b[64];
	size_t al = sizeof(a), bl = sizeof(b);
	gnutls_pubkey_t pub;
	int ok = 0;
	if (gnutls_pubkey_init(&pub) < 0)
		return 0;
	if (gnutls_pubkey_import_privkey(pub, c->key, 0, 0) == 0 &&
	    gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &al) == 0 &&
	    gnutls_pubkey_get_key_id(c->pcert[0].pubkey, GNUTLS_KEYID_USE_SHA256, b, &bl) == 0)
		ok = al == bl && memcmp(a, b, al) == 0;
	gnutls_pubkey_deinit(pub);
	return ok;
}

int jd_tls_load(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	gnutls_datum_t cert = { NULL, 0 }, key = { NULL, 0 };
	struct creds *c = calloc(1, sizeof(*c));
	int r;

	if (!c) {
		snprintf(err, errlen, "tls: out of memory");
		return -ENOMEM;
	}
	if ((r = gnutls_load_file(cert_path, &cert)) < 0) {
		snprintf(err, errlen, "tls_cert: cannot read %s: %s", cert_path,
			 gnutls_strerror(r));
		r = -EINVAL;
		goto fail;
	}
	if ((r = gnutls_load_file(key_path, &key)) < 0) {
		snprintf(err, errlen, "tls_key: cannot read %s: %s", key_path, gnutls_strerror(r));
		r = -EINVAL;
		goto fail;
	}
	c->npcert = MAX_CHAIN;
	r = gnutls_pcert_list_import_x509_raw(c->pcert, &c->npcert, &cert, GNUTLS_X509_FMT_PEM,
					      GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	if (r < 0 || c->npcert == 0) {
		c->npcert = r < 0 ? 0 : c->npcert;
		snprintf(err, errlen, "tls_cert: %s holds no usable PEM certificate chain: %s",
			 cert_path, r < 0 ? gnutls_strerror(r) : "none found");
		r = -EINVAL;
		goto fail;
	}
	if ((r = gnutls_privkey_init(&c->key)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(err, errlen, "tls_key: %s holds no usable PEM private key: %s", key_path,
			 gnutls_strerror(r));
		r = -EINVAL;
		goto fail;
	}
	if (!key_matches(c)) {
		snprintf(err, errlen,
			 "tls_key: the key in %s does not belong to the certificate in %s",
			 key_path, cert_path);
		r = -EINVAL;
		goto fail;
	}
	struct stat st;
	if (stat(key_path, &st) == 0 && (st.st_mode & S_IROTH))
		jd_warn("tls: %s (the private key) is readable by every user", key_path);
	describe(c, cert_path);
	gnutls_free(cert.data);
	gnutls_free(key.data);

	/* The new generation becomes current; the old one stays until its
	 * connections are gone. */
	if (current)
		current->next = c;
	else
		oldest = c;
	current = c;
	sweep();
	return 0;
fail:
	gnutls_free(cert.data);
	gnutls_free(key.data);
	creds_free(c);
	return r;
}

void jd_tls_describe(char *buf, size_t len)
{
	snprintf(buf, len, "%s", current ? current->desc : "no certificate");
}

static int on_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
		       const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
		       gnutls_pcert_st **pcert, unsigned int *pcert_length,
		       gnutls_privkey_t *privkey)
{
	(void)session;
	(void)req_ca_rdn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (!current)
		return -1;
	*pcert = current->pcert;
	*pcert_length = current->npcert;
	*privkey = current->key;
	return 0;
}

void *jd_tls_cert_callback(void)
{
	return (void *)on_retrieve;
}

void *jd_tls_conn_open(void)
{
	if (!current)
		return NULL;
	current->conns++;
	return current;
}

void jd_tls_conn_close(void *token)
{
	struct creds *c = token;
	if (!c)
		return;
	c->conns--;
	sweep();
}

void jd_tls_cleanup(void)
{
	while (oldest) {
		struct creds *c = oldest;
		oldest = c->next;
		creds_free(c);
	}
	current = NULL;
}
