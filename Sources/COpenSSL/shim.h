// libssl/libcrypto. Wrappers exist only for what OpenSSL 3 defines as macros, which Swift
// cannot import.
#ifndef TENOPS_COPENSSL_SHIM_H
#define TENOPS_COPENSSL_SHIM_H
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static inline EVP_PKEY *tenops_evp_ec_p256_keygen(void) { return EVP_EC_gen("P-256"); }
static inline long tenops_bio_mem_contents(BIO *b, char **out) { return BIO_get_mem_data(b, out); }
static inline void tenops_openssl_free(void *p) { OPENSSL_free(p); }
static inline void tenops_x509v3_set_ctx_nodb(X509V3_CTX *ctx) { X509V3_set_ctx_nodb(ctx); }
static inline int tenops_general_names_count(GENERAL_NAMES *n) { return sk_GENERAL_NAME_num(n); }
static inline GENERAL_NAME *tenops_general_names_value(GENERAL_NAMES *n, int i) { return sk_GENERAL_NAME_value(n, i); }
static inline void tenops_general_names_free(GENERAL_NAMES *n) { GENERAL_NAMES_free(n); }
static inline long tenops_ssl_ctx_set_min_tls12(SSL_CTX *c) { return SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION); }
static inline long tenops_ssl_set_tlsext_host_name(SSL *s, const char *name) { return SSL_set_tlsext_host_name(s, name); }
#endif
