/*
 * tls.h - the server certificate for HTTPS, swappable while jobd runs.
 *
 * Loop thread only. libmicrohttpd does the TLS (GnuTLS); it asks
 * jd_tls_cert_callback() for the certificate at each handshake, and that
 * hands out whatever jd_tls_load() last loaded. So SIGHUP can replace the
 * certificate without touching the listening socket or the connections
 * already open.
 */
#ifndef JD_TLS_H
#define JD_TLS_H

#include <stddef.h>

/* The GnuTLS priority string jobd uses unless told otherwise: TLS 1.2 and
 * 1.3 only. */
#define JD_TLS_DEFAULT_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Check a GnuTLS priority string. 0, or -EINVAL with a message in err. */
int jd_tls_check_priorities(const char *prio, char *err, size_t errlen);

/* Load a PEM certificate chain and its private key and make them the ones
 * served to new handshakes. On any problem (unreadable, not PEM, key and
 * certificate do not match) nothing changes and a message goes to err:
 * -errno or -EINVAL. Connections keep what they were given. */
int jd_tls_load(const char *cert_path, const char *key_path, char *err, size_t errlen);

/* A line about the certificate being served: subject, serial, expiry. */
void jd_tls_describe(char *buf, size_t len);

/* The gnutls_certificate_retrieve_function2 to give libmicrohttpd as
 * MHD_OPTION_HTTPS_CERT_CALLBACK. */
void *jd_tls_cert_callback(void);

/* A connection opened / closed: a replaced certificate is kept until no
 * connection that may have been handed it is left. jd_tls_conn_open()
 * returns a token for jd_tls_conn_close() (NULL when TLS is off). */
void *jd_tls_conn_open(void);
void jd_tls_conn_close(void *token);

/* Forget every certificate (at exit, after the connections are gone). */
void jd_tls_cleanup(void);

#endif
