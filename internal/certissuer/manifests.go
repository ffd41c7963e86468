package certissuer

import (
	"bytes"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// ClusterctlTestNamespace is the namespace clusterctl's cert-manager check
// creates and deletes at every `clusterctl init`; wait until it is gone
// before the next init (see the package documentation).
const ClusterctlTestNamespace = "cert-manager-test"

// MainPackage is the issuer binary's main package in this repository
// (a modbuild Program with an empty Module builds it).
const MainPackage = "./images/certissuer"

// Names of the installed objects.
const (
	Namespace      = "capilab-certissuer"
	Name           = "certissuer" // ServiceAccount, Deployment, container
	ClusterRole    = "capilab-certissuer"
	HealthPort     = 8081
	ImageRepo      = "capilab.local/certissuer" // image tag: first 12 hex digits of the binary's sha256
	runAsUser      = 65532
	appLabel       = "app.kubernetes.io/name"
	partOfLabel    = "app.kubernetes.io/part-of"
	partOf         = "capilab"
	managedByValue = "capilab"
)

// ImageName is the image reference of a certissuer binary with the given
// sha256 (hex): ImageRepo:<first 12 hex digits>. The tag changes with the
// binary, so nodes never run a stale image under a reused tag.
func ImageName(binarySHA256 string) string {
	if len(binarySHA256) > 12 {
		binarySHA256 = binarySHA256[:12]
	}
	return ImageRepo + ":" + binarySHA256
}

func commonLabels() map[string]string {
	return map[string]string{appLabel: Name, partOfLabel: partOf, LabelManagedBy: managedByValue}
}

func objectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: commonLabels()}
}

// Manifests returns every object that installs the issuer, image being its
// container image (already present on the nodes: the pull policy is
// IfNotPresent): the CRDs of cert-manager.io's Certificate, Issuer and
// ClusterIssuer (capilab's own, permissive schemas), the namespace (Pod
// Security "restricted" enforced), RBAC and the Deployment. Objects come in
// apply order, typed, with apiVersion and kind set; a client applying them
// needs client-go's scheme plus apiextensions/v1 (or use YAML).
func Manifests(image string) []client.Object {
	objs := []client.Object{}
	for _, crd := range CRDs() {
		objs = append(objs, crd)
	}
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: objectMeta("", Namespace),
	}
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	ns.Labels["pod-security.kubernetes.io/enforce-version"] = "latest"
	objs = append(objs, ns,
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: objectMeta(Namespace, Name),
		},
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: objectMeta("", ClusterRole),
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{Group}, Resources: []string{"certificates", "issuers", "clusterissuers"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{Group}, Resources: []string{"certificates/status", "issuers/status", "clusterissuers/status"}, Verbs: []string{"get", "update", "patch"}},
				// Issued Secrets anywhere; only the issuer's own are listed and watched (label selector).
				{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
				{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
				{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
				{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
				{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
				{APIGroups: []string{"apiregistration.k8s.io"}, Resources: []string{"apiservices"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
			},
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: objectMeta("", ClusterRole),
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: ClusterRole},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: Namespace, Name: Name}},
		},
		&rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: objectMeta(Namespace, Name+"-leader-election"),
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
			},
		},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: objectMeta(Namespace, Name+"-leader-election"),
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: Name + "-leader-election"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: Namespace, Name: Name}},
		},
		deployment(image),
	)
	return objs
}

func deployment(image string) *appsv1.Deployment {
	selector := map[string]string{appLabel: Name}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("health")}},
			PeriodSeconds: 10,
		}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(Namespace, Name),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: commonLabels()},
				Spec: corev1.PodSpec{
					ServiceAccountName: Name,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](runAsUser),
						RunAsGroup:     ptr.To[int64](runAsUser),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					Containers: []corev1.Container{{
						Name:            Name,
						Image:           image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args: []string{
							"--namespace=$(POD_NAMESPACE)",
							"--leader-elect=true",
							fmt.Sprintf("--health-probe-bind-address=:%d", HealthPort),
						},
						Env: []corev1.EnvVar{{
							Name:      "POD_NAMESPACE",
							ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
						}},
						Ports:          []corev1.ContainerPort{{Name: "health", ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP}},
						LivenessProbe:  probe("/healthz"),
						ReadinessProbe: probe("/readyz"),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsNonRoot:             ptr.To(true),
						},
					}},
				},
			},
		},
	}
}

// Objects is Manifests as unstructured objects, ready for server-side apply
// with any client (no scheme needed): status and creationTimestamp left out.
func Objects(image string) ([]*unstructured.Unstructured, error) {
	objs := Manifests(image)
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("convert %T %s: %w", o, o.GetName(), err)
		}
		delete(m, "status")
		unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(m, "spec", "template", "metadata", "creationTimestamp")
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out, nil
}

// YAML is Manifests as one multi-document YAML stream.
func YAML(image string) ([]byte, error) {
	var buf bytes.Buffer
	objs, err := Objects(image)
	if err != nil {
		return nil, err
	}
	for i, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("marshal %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// CRDs are capilab's own definitions of the cert-manager.io kinds the
// providers' components and clusterctl's readiness check use. Only v1 is
// served. The schemas type the fields certissuer reads (so a typo fails at
// the API) and keep every other field (x-kubernetes-preserve-unknown-fields).
func CRDs() []*apiextensionsv1.CustomResourceDefinition {
	str := apiextensionsv1.JSONSchemaProps{Type: "string"}
	strs := apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &str}}
	open := apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr.To(true)}

	certSpec := apiextensionsv1.JSONSchemaProps{
		Type:                   "object",
		Description:            "What to issue; the fields cert-manager's Certificate has. Fields certissuer does not implement make the Certificate not Ready (reason Unsupported).",
		XPreserveUnknownFields: ptr.To(true),
		Required:               []string{"secretName", "issuerRef"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"secretName": {Type: "string", MinLength: ptr.To[int64](1), Description: "Secret (kubernetes.io/tls: tls.crt, tls.key, ca.crt) the certificate is written to."},
			"issuerRef": {
				Type:     "object",
				Required: []string{"name"},
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"name":  str,
					"kind":  {Type: "string", Description: "Issuer (default) or ClusterIssuer."},
					"group": {Type: "string", Description: "cert-manager.io (default)."},
				},
			},
			"commonName":            {Type: "string", MaxLength: ptr.To[int64](MaxCommonNameLen), Description: "Subject CN; X.509 allows at most 64 characters. Put long names in dnsNames."},
			"dnsNames":              strs,
			"ipAddresses":           strs,
			"uris":                  strs,
			"emailAddresses":        strs,
			"usages":                strs,
			"duration":              {Type: "string", Description: "Lifetime, a Go duration (default 2160h)."},
			"renewBefore":           {Type: "string", Description: "Renew this long before expiry, a Go duration (default a third of the lifetime)."},
			"renewBeforePercentage": {Type: "integer", Format: "int32"},
			"isCA":                  {Type: "boolean"},
			"subject":               open,
			"privateKey":            open,
			"secretTemplate":        open,
		},
	}
	issuerSpec := apiextensionsv1.JSONSchemaProps{
		Type:                   "object",
		Description:            "Issuer type: selfSigned: {} and any type certissuer does not implement are signed by the lab CA; ca: {secretName} signs with that key pair.",
		XPreserveUnknownFields: ptr.To(true),
	}
	ready := apiextensionsv1.CustomResourceColumnDefinition{Name: "Ready", Type: "string", JSONPath: `.status.conditions[?(@.type=="Ready")].status`}
	age := apiextensionsv1.CustomResourceColumnDefinition{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"}

	mk := func(kind, plural, singular string, scope apiextensionsv1.ResourceScope, short []string, spec apiextensionsv1.JSONSchemaProps, columns ...apiextensionsv1.CustomResourceColumnDefinition) *apiextensionsv1.CustomResourceDefinition {
		return &apiextensionsv1.CustomResourceDefinition{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
			ObjectMeta: objectMeta("", plural+"."+Group),
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: Group,
				Names: apiextensionsv1.CustomResourceDefinitionNames{
					Kind: kind, ListKind: kind + "List", Plural: plural, Singular: singular,
					ShortNames: short, Categories: []string{"cert-manager"},
				},
				Scope: scope,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: Version, Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type:        "object",
						Description: kind + " of the cert-manager.io API, served by capilab's certissuer.",
						Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"apiVersion": str,
							"kind":       str,
							"metadata":   {Type: "object"},
							"spec":       spec,
							"status":     open,
						},
					}},
					Subresources:             &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
					AdditionalPrinterColumns: append(columns, age),
				}},
			},
		}
	}
	return []*apiextensionsv1.CustomResourceDefinition{
		mk("Certificate", "certificates", "certificate", apiextensionsv1.NamespaceScoped, []string{"cert", "certs"}, certSpec,
			ready,
			apiextensionsv1.CustomResourceColumnDefinition{Name: "Secret", Type: "string", JSONPath: ".spec.secretName"},
			apiextensionsv1.CustomResourceColumnDefinition{Name: "Issuer", Type: "string", JSONPath: ".spec.issuerRef.name"},
			apiextensionsv1.CustomResourceColumnDefinition{Name: "Renewal", Type: "string", JSONPath: ".status.renewalTime", Priority: 1},
		),
		mk("Issuer", "issuers", "issuer", apiextensionsv1.NamespaceScoped, nil, issuerSpec, ready),
		mk("ClusterIssuer", "clusterissuers", "clusterissuer", apiextensionsv1.ClusterScoped, nil, issuerSpec, ready),
	}
}
