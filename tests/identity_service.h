/*
 * A small keystone-style identity service written with csgi itself, for
 * testing the auth_token filter end to end: password authentication
 * (POST /v3/auth/tokens) issues tokens, and GET/HEAD/DELETE
 * /v3/auth/tokens with X-Subject-Token validate, check and revoke them,
 * answering in keystone's shapes. It counts the validations it answers,
 * and can be told to misbehave (answer 500, answer a non-token, hang).
 *
 * Users (name / password, project, roles): admin / secret-admin, project
 * admin, roles admin,member,reader; glance / secret-glance, project
 * service, roles service,admin; demo / secret-demo, project demo, roles
 * member,reader; all in the Default domain.
 */
#ifndef CSGI_TESTS_IDENTITY_SERVICE_H
#define CSGI_TESTS_IDENTITY_SERVICE_H

#include <csgi.h>

typedef enum identity_mode {
    IDENTITY_NORMAL,
    IDENTITY_FAIL,     /* every validation answers 500 */
    IDENTITY_NONSENSE, /* validations answer 200 with a body that is not a token */
    IDENTITY_HANG      /* validations never answer */
} identity_mode;

/* The service as an application (reference count 1). */
csgi_app *identity_service_new(void);

/* Validations (GET and HEAD /v3/auth/tokens) answered so far, and
   password authentications. */
int identity_service_validations(void);
int identity_service_issued(void);

void identity_service_set_mode(identity_mode mode);

/* Tokens issued from now on expire after seconds (default 3600). */
void identity_service_set_lifetime(int seconds);

/* Issue a token for user without HTTP (as POST /v3/auth/tokens would):
   copied into out (size bytes). 0, or -1 for an unknown user. */
int identity_service_issue(const char *user, char *out, size_t size);

/* Revoke every token (as if keystone's tokens were all deleted). */
void identity_service_reset(void);

#endif
