#!/usr/bin/env python3
"""The talk's urllib2 client ("Keystone API using urllib2" and "Images API
using urllib2"), ported to Python 3's urllib.request and nothing else.

    talk_client.py AUTH_URL USER PASSWORD PROJECT

AUTH_URL is the base the v2.0 API is under: http://127.0.0.1:8080 (then
/v2.0/tokens), or http://127.0.0.1:8080/identity, or a URL that ends in
/v2.0 already. The client gets a token from {AUTH_URL}/v2.0/tokens with
passwordCredentials and tenantName, finds the image service in the
serviceCatalog, and prints {publicURL}/images/detail as the talk does.

The talk looked for `type == 'compute'` (nova proxied the images then);
here the image service answers the listing itself, so it looks for
`type == 'image'`. Exit status 1 with the server's answer on an HTTP error.
"""
import json
import sys
import urllib.error
import urllib.request


def get_keystone_token(auth_url, user, password, project):
    """authenticate against keystone identity service
    returns an auth token, and the service url

    """
    if not auth_url.rstrip('/').endswith('/v2.0'):
        auth_url = auth_url.rstrip('/') + '/v2.0'
    auth_url = auth_url.rstrip('/') + '/tokens'

    auth_request = urllib.request.Request(auth_url)
    auth_request.add_header('Content-Type', 'application/json;charset=utf8')
    auth_request.add_header('Accept', 'application/json')
    auth_request.add_header('User-Agent', 'python-mikeyp')

    auth_data = {"auth":
                 {"tenantName": project,
                  "passwordCredentials": {
                      "username": user,
                      "password": password}
                  }
                 }
    auth_request.data = json.dumps(auth_data).encode('utf-8')
    auth_response = urllib.request.urlopen(auth_request)
    response_data = json.loads(auth_response.read())

    token = response_data['access']['token']['id']

    service_list = response_data['access']['serviceCatalog']
    for s in service_list:
        if s['type'] == 'image':
            break
    else:
        raise SystemExit('talk_client: no image service in the catalog')
    image_url = s['endpoints'][0]['publicURL']
    return (token, image_url)


def main(argv):
    if len(argv) != 5:
        sys.stderr.write('usage: talk_client.py AUTH_URL USER PASSWORD PROJECT\n')
        return 2
    auth_url, user, password, project = argv[1:]
    try:
        token, service_url = get_keystone_token(auth_url, user, password, project)

        image_api = service_url + '/images/detail'

        images_request = urllib.request.Request(image_api)
        images_request.add_header('Content-Type', 'application/json;charset=utf8')
        images_request.add_header('Accept', 'application/json')
        images_request.add_header('User-Agent', 'python-mikeyp')
        images_request.add_header('X-Auth-Token', token)
        images_request.add_header('X-Auth-Project-Id', project)

        image_response = urllib.request.urlopen(images_request)
        image_data = json.loads(image_response.read())
    except urllib.error.HTTPError as error:
        sys.stderr.write('talk_client: %s %s: %s\n' % (error.code, error.reason,
                                                       error.read().decode('utf-8', 'replace')))
        return 1
    print(json.dumps(image_data, indent=4))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
