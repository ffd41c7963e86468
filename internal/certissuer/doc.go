// Package certissuer is capilab's small stand-in for cert-manager in the
// management cluster. Cluster API's and CAPO's components ask cert-manager
// for their webhook serving certificates (cert-manager.io/v1 Issuer and
// Certificate objects) and for CA injection (the
// cert-manager.io/inject-ca-from annotation). cert-manager's controller,
// webhook and cainjector commands are separate Go modules the module proxy
// does not serve, so they cannot be built offline; this package is a real
// controller (controller-runtime) that does the part capilab needs, written
// from scratch against the cert-manager.io API as its objects spell it. It
// does not import cert-manager's Go module; its CRDs (CRDs) are capilab's
// own, with permissive schemas.
//
// # What it does
//
// The binary (images/certissuer) runs NewManager: one leader-elected
// replica (Lease LeaderElectionID in the issuer's namespace) runs these
// controllers.
//
//  1. The lab CA. At start the leader makes sure Secret CASecretName exists
//     in the issuer's namespace: an ECDSA P-256 self-signed CA, valid
//     CALifetime, marked with the AnnotationLabCA annotation. It is created
//     once and reused by every later process. It is replaced once two thirds
//     of its lifetime have passed (or when it no longer parses); deleting the
//     Secret rotates it by hand. A Secret of that name without the mark is
//     never touched: the issuer refuses to run on it.
//
//  2. Certificates. For every Certificate (any namespace):
//     a. spec is validated (parseCertificate): secretName and issuerRef.name
//     are required; dnsNames, ipAddresses, uris, emailAddresses, subject,
//     commonName, duration (default 90 days, at least MinDuration),
//     renewBefore (default a third of the duration) or
//     renewBeforePercentage, isCA, usages and privateKey (algorithm RSA
//     2048–8192, ECDSA 256/384/521 or Ed25519; encoding PKCS1 or PKCS8;
//     rotationPolicy Always or Never) are honoured. The CN is
//     spec.commonName and nothing else: it is never derived from a DNS name
//     (service names exceed the 64 characters X.509 allows), and a
//     commonName over 64 characters is refused. Fields whose output the
//     issuer does not write (keystores, additionalOutputFormats,
//     literalSubject, nameConstraints, otherNames, signatureAlgorithm) make
//     the Certificate not Ready with reason Unsupported rather than being
//     ignored.
//     b. The issuer is resolved (issuerRef kind Issuer, the default, or
//     ClusterIssuer, group cert-manager.io). A selfSigned issuer — the only
//     kind CAPI's and CAPO's components use — is served by the lab CA: the
//     certificate is signed by it and ca.crt is the lab CA, not the leaf
//     itself as cert-manager would write. Consequence: a CA bundle stays the
//     same across renewals, so an injected caBundle never trails a renewed
//     serving certificate. A ca issuer signs with the key pair in its
//     spec.ca.secretName Secret (the Issuer's namespace; for a
//     ClusterIssuer, the issuer's namespace); tls.crt is then the leaf plus
//     that CA's chain unless the CA is a root, and ca.crt is that Secret's
//     ca.crt, or its root. Any other issuer type (acme, vault, venafi) and
//     issuers of other groups are signed by the lab CA, and the Ready message
//     says so. A missing issuer is Ready=False IssuerNotFound until it
//     appears (Issuer events map back to their Certificates).
//     c. The Secret spec.secretName is checked (check): it must hold a key
//     pair of the requested algorithm, size and encoding, a certificate
//     signed by the issuer's CA with exactly the requested SANs, CN,
//     subject, isCA, usages and lifetime, the issuer's ca.crt, and not be
//     due for renewal (now < notAfter − renewBefore). Every mismatch is one
//     line ("DNS names differ: …", "renewal is due since …") that is logged
//     and recorded in the Issued Event. Before re-issuing on what the cache
//     shows, the Secret is read again from the API server, so a lagging
//     cache never causes a second issuance.
//     d. If anything is off, a certificate is issued (new key unless
//     rotationPolicy is Never and the old key fits) into a kubernetes.io/tls
//     Secret with tls.crt, tls.key and ca.crt, labelled LabelManagedBy=
//     ManagedBy, annotated like cert-manager's (certificate-name, issuer-*,
//     common-name, alt-names, ip-sans, uri-sans) plus AnnotationRevision, and
//     controlled by the Certificate (deleting the Certificate deletes the
//     Secret). A Secret that provably belongs to something else — the lab CA,
//     another Certificate, another controlling owner, or a type other than
//     kubernetes.io/tls — is never modified: the Certificate becomes
//     Ready=False SecretConflict. An existing kubernetes.io/tls Secret
//     without such marks is adopted, as the Certificate's spec.secretName
//     claims it.
//     e. The status gets a Ready condition (reason Ready, or why not),
//     notBefore, notAfter, renewalTime and revision, written only when they
//     change; anything that waits for Ready=True works.
//     f. The request is requeued for renewalTime: renewals happen on time
//     without any polling. A deleted or edited Secret, a changed spec, a
//     replaced lab CA or CA-issuer Secret trigger a reconcile through
//     watches.
//
//  3. Issuers and ClusterIssuers get a Ready condition: True for selfSigned
//     and for types served by the lab CA (the message says so), True for a
//     ca issuer whose Secret holds a usable CA, False otherwise.
//
//  4. CA injection. ValidatingWebhookConfigurations,
//     MutatingWebhookConfigurations, CustomResourceDefinitions (their
//     conversion webhook) and APIServices carrying
//     inject-ca-from: <namespace>/<certificate> get that Certificate's
//     ca.crt in every caBundle field: all webhooks of a configuration,
//     spec.conversion.webhook.clientConfig of a CRD with strategy Webhook,
//     spec.caBundle of an APIService backed by a service. Only metadata of
//     these kinds is cached; the full object is read live and updated with
//     its resourceVersion (a conflict retries). Certificate and Secret
//     events map back to the objects naming them, so a re-issue under a new
//     CA, or a re-apply that wiped a caBundle, is corrected at once.
//     inject-ca-from-secret and inject-apiserver-ca are not implemented (no
//     component capilab installs uses them): objects carrying them get a
//     Warning Event and an error log line.
//
// Only Secrets labelled LabelManagedBy=ManagedBy are cached and watched, so
// the issuer's memory does not grow with the cluster's Secrets; others (a
// pre-existing output Secret, a CA issuer's own Secret) are read live when
// needed. A CA Secret not made by the issuer is therefore not watched: a
// change to it is picked up at the next reconcile of its Certificates (at
// the latest their renewal; a CA issuer whose Secret is missing is retried
// every minute).
//
// # What clusterctl relies on
//
// Read from clusterctl's cert-manager client (cmd/clusterctl/client/cluster
// cert_manager.go of the pinned Cluster API module):
//
//   - `clusterctl init` calls CertManager().EnsureInstalled before it
//     installs any provider. That runs waitForAPIReady: for each object of
//     its embedded test manifest (Namespace cert-manager-test; Issuer
//     test-selfsigned with spec.selfSigned; Certificate selfsigned-cert with
//     dnsNames [example.com], secretName selfsigned-cert-tls and issuerRef
//     test-selfsigned) it gets the object and creates or updates it, then it
//     deletes all three, NotFound tolerated. It never waits for the
//     Certificate to be issued. When every create succeeds it logs
//     "Skipping installing cert-manager as it is already installed" and
//     installs nothing. What it needs is therefore: the cert-manager.io/v1
//     Issuer and Certificate kinds served (our CRDs) and creates accepted (no
//     admission webhook in the way).
//   - Unless the clusterctl configuration says
//     cert-manager.externallyProvisioned: "true", that check is tried once,
//     without retries, and any failure makes clusterctl download and install
//     cert-manager from its release URL — which fails offline. With
//     externallyProvisioned it retries each object for the cert-manager
//     timeout (default 10 minutes) and never installs. Install the issuer's
//     CRDs before init.
//   - The check ends by deleting its namespace (ClusterctlTestNamespace),
//     which takes seconds to terminate (5.4 s measured in kind). A second
//     check in that window fails: it "creates" the terminating namespace
//     (an update of the existing one), then cannot create the Issuer in it.
//     Without externallyProvisioned clusterctl then tries to install
//     cert-manager; with it, it retries the Issuer until its timeout — the
//     namespace is gone by then, and clusterctl does not create it again.
//     Both were observed in the e2e test. So before every `clusterctl init`
//     (a second init for another provider included) wait until that
//     namespace is gone.
//   - `clusterctl upgrade` and `upgrade plan` touch cert-manager only when
//     objects labelled clusterctl.cluster.x-k8s.io/core=cert-manager exist in
//     the cert-manager or kube-system namespace. The issuer's objects carry
//     no clusterctl label, so clusterctl treats it as externally managed and
//     leaves it alone.
//   - `clusterctl init list-images` leaves out cert-manager's images only
//     when a namespace named cert-manager exists. The issuer lives in
//     Namespace (capilab-certissuer), so that listing still names
//     cert-manager's images; nothing else depends on the namespace's name.
//   - When clusterctl installs a provider it creates cert-manager.io objects
//     right after Namespaces and rewrites the namespace of inject-ca-from
//     values and of Certificate dnsNames to the target namespace: plain
//     edits of the objects, which the issuer handles like any other.
//
// The providers' components (CAPI core, kubeadm bootstrap, kubeadm control
// plane, CAPO) each use one Issuer selfsigned-issuer (spec.selfSigned) and
// one Certificate serving-cert (dnsNames <service>.<namespace>.svc and
// <service>.<namespace>.svc.cluster.local; CAPI's with
// subject.organizations), and inject-ca-from on their webhook
// configurations and their CRDs' conversion webhooks.
//
// # Installing it
//
// Manifests(image) (or YAML(image)) returns the CRDs, the namespace with
// Pod Security "restricted" enforced, RBAC and the Deployment, in apply
// order. The image is built without a registry from images/certissuer (a
// static binary) and named ImageName(sha256 of the binary).
package certissuer
