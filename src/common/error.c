#include <csgi/common.h>

#define STR2(x) #x
#define STR(x)  STR2(x)

const char *csgi_version_string(void)
{
    return STR(CSGI_VERSION_MAJOR) "." STR(CSGI_VERSION_MINOR) "." STR(CSGI_VERSION_PATCH);
}

const char *csgi_strerror(int err)
{
    switch (err) {
    case 0: return "success";
#define ERR_TEXT(name, value, text) \
    case value: return text;
        CSGI_ERR_MAP(ERR_TEXT)
#undef ERR_TEXT
    default: return "unknown error";
    }
}

const char *csgi_err_name(int err)
{
    switch (err) {
    case 0: return "CSGI_OK";
#define ERR_NAME(name, value, text) \
    case value: return "CSGI_E" #name;
        CSGI_ERR_MAP(ERR_NAME)
#undef ERR_NAME
    default: return "CSGI_EUNKNOWN";
    }
}
