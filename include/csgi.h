/**
 * @file csgi.h
 * @brief The umbrella header: include this to use csgi.
 *
 * csgi is the C Server Gateway Interface: a strict, streaming HTTP/1.1
 * server on libevent, a WSGI-style application protocol and the tools
 * around it. Each module has its own header under csgi/.
 */
#ifndef CSGI_H
#define CSGI_H

#include "csgi/common.h"
#include "csgi/environ.h"
#include "csgi/app.h"
#include "csgi/errors.h"
#include "csgi/server.h"
#include "csgi/tls.h"
#include "csgi/auth_token.h"
#include "csgi/composite.h"
#include "csgi/router.h"
#include "csgi/loader.h"
#include "csgi/testing.h"
#include "csgi/lint.h"
#include "csgi/negotiate.h"
#include "csgi/response.h"
#include "csgi/request.h"
#include "csgi/handler.h"
#include "csgi/threadpool.h"
#include "csgi/client.h"

/* csgi/json.h (JSON values in the environ) is not included here: it pulls
   in jansson.h. Include it where you use it. */

#endif /* CSGI_H */
