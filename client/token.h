/*
 * token.h - jobctl and bearer tokens: which token to send, and making new
 * ones for jobd's tokens file (jobctl token new).
 *
 * Single-threaded; no state.
 */
#ifndef JD_CLIENT_TOKEN_H
#define JD_CLIENT_TOKEN_H

/* The token to send: `flag` (--token) if given, else $JOBD_TOKEN, else the
 * first line of the file $JOBD_TOKEN_FILE; *out is NULL when none of them
 * is set. JD_EXIT_OK (*out allocated, the caller frees it) or
 * JD_EXIT_USAGE after saying what is wrong (an unreadable file, a token
 * that cannot be sent). */
int jd_token_pick(const char *flag, char **out);

/* `jobctl token new NAME ROLE [--file PATH]`: make a token of 256 random
 * bits, print it on stdout, and print the line for jobd's tokens file on
 * stderr, or append that line to `file` (created with mode 0600). An exit
 * code. */
int jd_token_new(const char *name, const char *role, const char *file);

#endif
