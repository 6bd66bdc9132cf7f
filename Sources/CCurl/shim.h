// libcurl's option and info setters are C variadics, which Swift cannot call. These typed
// wrappers are the whole of the shim.
#ifndef TENOPS_CCURL_SHIM_H
#define TENOPS_CCURL_SHIM_H
#include <curl/curl.h>
#include <openssl/ssl.h>
#ifdef __linux__
// The transport's I/O thread waits on curl's sockets with epoll (see CurlMultiLoop).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

static inline CURLcode tenops_curl_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tenops_curl_easy_setopt_ptr(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tenops_curl_easy_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tenops_curl_easy_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode tenops_curl_easy_setopt_blob(CURL *h, CURLoption o, const void *data, size_t len) {
    struct curl_blob blob = { (void *)data, len, CURL_BLOB_COPY };
    return curl_easy_setopt(h, o, &blob);
}
typedef size_t (*tenops_curl_data_callback)(char *, size_t, size_t, void *);
static inline CURLcode tenops_curl_easy_setopt_data_callback(CURL *h, CURLoption o, tenops_curl_data_callback f) { return curl_easy_setopt(h, o, f); }
static inline CURLcode tenops_curl_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode tenops_curl_easy_getinfo_ptr(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLMcode tenops_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode tenops_curl_multi_setopt_ptr(CURLM *m, CURLMoption o, void *v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode tenops_curl_multi_setopt_socket_callback(CURLM *m, curl_socket_callback f) { return curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, f); }
static inline CURLMcode tenops_curl_multi_setopt_timer_callback(CURLM *m, curl_multi_timer_callback f) { return curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, f); }
static inline curl_socket_t tenops_curl_socket_timeout(void) { return CURL_SOCKET_TIMEOUT; }

// curl asks OpenSSL to free a connection's record buffers whenever they are empty
// (SSL_MODE_RELEASE_BUFFERS), so a long stream allocates and frees 17 KB or more at almost every
// read. A connection here keeps its buffers for its life instead.
static inline CURLcode tenops_curl_keep_tls_buffers_callback(CURL *handle, void *ssl_ctx, void *unused) {
    (void)handle;
    (void)unused;
    SSL_CTX_clear_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    return CURLE_OK;
}
static inline CURLcode tenops_curl_easy_keep_tls_buffers(CURL *h) {
    return curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, tenops_curl_keep_tls_buffers_callback);
}
#endif
