/*
 * csgi_loader_describe (csgi-serve --check): build the application and say
 * what was built, item by item, outermost first. With stub_unknown, an
 * unknown factory becomes a labelled placeholder instead of an error.
 */
#include "common/alloc.h"
#include "common/vec.h"
#include "loader/loader_private.h"
#include "loader/text.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * csgi_loader_describe records each item built as a node of a tree: what a
 * section builds while its factory runs (a pipeline's items, a composite's
 * apps, a filter-app's next) are its children. Filters wrap what was built
 * before them, so a filter goes in front of the item it wraps: each node
 * remembers where the chain being wrapped starts (chain_start), and a filter
 * is inserted there. The text lists the tree outermost first.
 */
struct csgi_loader__describe_node {
    csgi_loader__describe_node **children;
    size_t count;
    size_t capacity;
    size_t chain_start;
    const csgi_conf__context *context;
    int stub;
};

static void describe_free(csgi_loader__describe_node *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->count; i++)
        describe_free(node->children[i]);
    csgi__free(node->children);
    csgi__free(node);
}

/* At the end (an app: it starts a chain) or, wrapping, in front of the
   current chain (a filter). */
int csgi_loader__describe_enter(csgi_loader *loader, const csgi_conf__context *context,
                                int wrapping)
{
    csgi_loader__describe_node *parent = loader->describing;
    if (!parent)
        return 0;
    /* No cap of its own: a node is an item the loader built. */
    void *children = parent->children;
    int rc = csgi_vec__reserve(&children, &parent->capacity, sizeof(*parent->children),
                               parent->count + 1, SIZE_MAX);
    if (rc != 0)
        return rc;
    parent->children = children;
    csgi_loader__describe_node *node = csgi__calloc(1, sizeof(*node));
    if (!node)
        return CSGI_ENOMEM;
    node->context = context;
    size_t at = wrapping ? parent->chain_start : parent->count;
    if (at > parent->count)
        at = parent->count;
    memmove(parent->children + at + 1, parent->children + at,
            (parent->count - at) * sizeof(*parent->children));
    parent->children[at] = node;
    parent->count++;
    parent->chain_start = at;
    loader->describing = node;
    return 0;
}

/* The description being written: the first failure sticks (rc), later
   appends do nothing. The text is csgi__realloc'd: the loader keeps it. */
typedef struct describe_text {
    csgi_text text;
    int rc;
} describe_text;

static void text_append(describe_text *text, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void text_append(describe_text *text, const char *format, ...)
{
    if (text->rc != 0)
        return;
    va_list args;
    va_start(args, format);
    text->rc = csgi_text__vprintf(&text->text, format, args);
    va_end(args);
}

static void describe_render(const csgi_loader__describe_node *node, int depth, describe_text *text)
{
    const csgi_conf__context *context = node->context;
    text_append(text, "%*s", depth * 2, "");
    if (context->section)
        text_append(text, "[%s] %s", context->section, csgi_conf__kind_name(context->kind));
    else
        text_append(text, "%s", csgi_conf__kind_name(context->kind));
    if (context->factory.text) {
        const char *protocol = csgi_conf__protocol_name(context->protocol);
        text_append(text, " %s%s%s", protocol ? protocol : "use", " = ", context->factory.text);
    }
    if (context->kind == CSGI_CONF__KIND_PIPELINE) {
        text_append(text, " pipeline =");
        for (size_t i = 0; i < context->pipeline_count; i++)
            text_append(text, " %s", context->pipeline[i].text);
    }
    if (context->local_conf.count) {
        text_append(text, " (");
        for (const csgi_conf__entry *e = context->local_conf.first; e; e = e->next) {
            text_append(text, "%s%s = ", e == context->local_conf.first ? "" : ", ", e->name);
            /* One line per item: a multi-line value shows its newlines as \n. */
            for (const char *v = e->value; *v;) {
                size_t run = strcspn(v, "\n");
                text_append(text, "%.*s", (int)run, v);
                v += run;
                if (*v == '\n') {
                    text_append(text, "\\n");
                    v++;
                }
            }
        }
        text_append(text, ")");
    }
    if (context->blocking.text)
        text_append(text, " blocking = %s", context->blocking.text);
    if (node->stub)
        text_append(text, " (stub: unknown factory)");
    text_append(text, "\n");
    for (size_t i = 0; i < node->count; i++)
        describe_render(node->children[i], depth + 1, text);
}

/* The placeholder --stub-unknown puts where a factory is unknown: 501. */
static csgi_body *placeholder_call(void *state, csgi_environ *env,
                                   csgi_start_response *start_response)
{
    const char *message = state;
    csgi_header headers[1] = {{"Content-Type", 12, "text/plain", 10}};
    if (csgi_start_response_call(start_response, "501 Not Implemented", headers, 1, NULL) != 0)
        return NULL;
    return csgi_body_bytes(env, message, strlen(message));
}

static void placeholder_destroy(void *state)
{
    csgi__free(state);
}

static const csgi_app_type placeholder_type = {"csgi.placeholder", placeholder_call,
                                               placeholder_destroy};

int csgi_loader__stub_unknown(csgi_loader *loader, const csgi_conf__context *context, int *rc,
                              csgi_app **out, csgi_load_error *error)
{
    if (!loader->stub_unknown || !loader->describing || *rc != CSGI_ENOTFOUND)
        return 0;
    csgi_load_error__clear(error);
    loader->describing->stub = 1;
    if (!out) {
        *rc = 0;
        return 1;
    }
    const char *reference = context->factory.text ? context->factory.text : "?";
    size_t len = strlen("placeholder for ") + strlen(reference);
    char *message = csgi__malloc(len + 1);
    if (!message) {
        *rc = CSGI_ENOMEM;
        csgi_load_error__code(error, *rc);
        return 1;
    }
    snprintf(message, len + 1, "placeholder for %s", reference);
    *rc = csgi_app_new(out, &placeholder_type, message);
    if (*rc != 0)
        csgi_load_error__code(error, *rc);
    return 1;
}

void csgi_loader__free_description(csgi_loader *loader)
{
    csgi__free(loader->description);
    loader->description = NULL;
}

int csgi_loader_describe(const char **out, csgi_loader *loader, const char *uri, int stub_unknown,
                         csgi_load_error *error)
{
    csgi_load_error scratch;
    if (out)
        *out = NULL;
    int rc = csgi_loader__start(&error, &scratch, loader && uri && out && !loader->describing);
    if (rc != 0)
        return rc;
    csgi_loader__describe_node *root = csgi__calloc(1, sizeof(*root));
    if (!root) {
        csgi_load_error__code(error, CSGI_ENOMEM);
        return CSGI_ENOMEM;
    }
    loader->describing = root;
    loader->stub_unknown = stub_unknown ? 1 : 0;
    csgi_app *app = NULL;
    rc = csgi_loader_load_app(&app, loader, uri, error);
    loader->describing = NULL;
    loader->stub_unknown = 0;
    csgi_app_free(app);
    if (rc == 0) {
        /* No cap of its own: a line per item the loader built. */
        describe_text text = {.text.max = SIZE_MAX};
        for (size_t i = 0; i < root->count; i++)
            describe_render(root->children[i], 0, &text);
        if (text.rc == 0 && !text.text.data)
            text.rc = CSGI_ENOMEM;
        if (text.rc != 0) {
            csgi_text__free(&text.text);
            rc = text.rc;
            csgi_load_error__code(error, rc);
        } else {
            csgi__free(loader->description);
            loader->description = text.text.data;
            *out = text.text.data;
        }
    }
    describe_free(root);
    return rc;
}
