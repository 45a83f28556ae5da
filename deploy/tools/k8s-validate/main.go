// k8s-validate checks amends' deployment files offline, without schema downloads.
//
//	k8s-validate k8s FILE|-            every YAML document, strictly decoded into its Go type
//	k8s-validate rules FILE...         Prometheus rule files (rulefmt + PromQL parser)
//	k8s-validate promql < exprs.jsonl  PromQL expressions, one JSON string a line; prints
//	                                   {"expr","error","metrics"} a line
//	k8s-validate compose FILE          a Compose file, loaded and checked against the
//	                                   Compose Specification schema (compose-go, as docker
//	                                   compose does); prints the services as JSON
//
// Kubernetes kinds are decoded with the API types of k8s.io/api (the release pinned in
// go.mod) through client-go's scheme in strict mode: an unknown or duplicated field, a
// wrong type or an unknown apiVersion/kind is an error. The CRDs amends uses are decoded
// the same way with their projects' own Go types (KEDA ScaledObject/TriggerAuthentication,
// Prometheus Operator PodMonitor/ServiceMonitor/PrometheusRule), plus the checks those
// projects export (KEDA trigger and replica bounds, PromQL of every rule). Strimzi has no
// Go API, so KafkaTopic is decoded strictly into a struct written from its v1 CRD
// (kafka.strimzi.io/v1) with the CRD's bounds.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	composetypes "github.com/compose-spec/compose-go/v2/types"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// The PromQL parser with Prometheus' default options (no experimental functions).
var promql = parser.NewParser(parser.Options{})

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: k8s-validate k8s FILE|- | rules FILE... | promql")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "k8s":
		err = validateManifests(os.Args[2:])
	case "rules":
		err = validateRuleFiles(os.Args[2:])
	case "promql":
		err = parseExpressions(os.Stdin, os.Stdout)
	case "compose":
		err = validateCompose(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// -- Kubernetes manifests --------------------------------------------------------------

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		scheme.AddToScheme,
		kedav1alpha1.AddToScheme,
		monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

func validateManifests(paths []string) error {
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	decoder := serializer.NewCodecFactory(newScheme(), serializer.EnableStrict).UniversalDeserializer()
	failures, count := 0, 0
	for _, path := range paths {
		var in io.Reader = os.Stdin
		if path != "-" {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 || isOnlyComments(doc) {
				continue
			}
			count++
			name, problems := validateDocument(decoder, doc)
			if len(problems) == 0 {
				fmt.Printf("ok    %s\n", name)
				continue
			}
			failures++
			for _, p := range problems {
				fmt.Printf("FAIL  %s: %s\n", name, p)
			}
		}
	}
	fmt.Printf("%d documents, %d invalid\n", count, failures)
	if failures > 0 {
		return fmt.Errorf("%d of %d documents invalid", failures, count)
	}
	if count == 0 {
		return errors.New("no documents")
	}
	return nil
}

func isOnlyComments(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && line != "---" {
			return false
		}
	}
	return true
}

func validateDocument(decoder runtime.Decoder, doc []byte) (string, []string) {
	var u unstructured.Unstructured
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return "?", []string{err.Error()}
	}
	if err := u.UnmarshalJSON(j); err != nil {
		return "?", []string{err.Error()}
	}
	name := fmt.Sprintf("%s %s/%s", u.GetObjectKind().GroupVersionKind().GroupKind(), u.GetNamespace(), u.GetName())
	var problems []string
	if u.GetName() == "" {
		problems = append(problems, "metadata.name is empty")
	}
	for _, msg := range validation.IsDNS1123Subdomain(u.GetName()) {
		problems = append(problems, "metadata.name: "+msg)
	}
	if u.GetAPIVersion() == "kafka.strimzi.io/v1" && u.GetKind() == "KafkaTopic" {
		return name, append(problems, validateKafkaTopic(j)...)
	}
	obj, _, err := decoder.Decode(doc, nil, nil)
	if err != nil {
		problems = append(problems, err.Error())
		if obj == nil || !runtime.IsStrictDecodingError(err) {
			return name, problems
		}
		// Strict errors still return the decoded object: check what else is wrong.
	}
	switch o := obj.(type) {
	case *kedav1alpha1.ScaledObject:
		problems = append(problems, validateScaledObject(o)...)
	case *monitoringv1.PrometheusRule:
		problems = append(problems, validatePrometheusRule(o)...)
	}
	return name, problems
}

func validateScaledObject(so *kedav1alpha1.ScaledObject) []string {
	var problems []string
	if so.Spec.ScaleTargetRef == nil || so.Spec.ScaleTargetRef.Name == "" {
		problems = append(problems, "spec.scaleTargetRef.name is required")
	}
	if len(so.Spec.Triggers) == 0 {
		problems = append(problems, "spec.triggers is empty")
	}
	if err := kedav1alpha1.ValidateTriggers(so.Spec.Triggers); err != nil {
		problems = append(problems, err.Error())
	}
	if err := kedav1alpha1.CheckReplicaCountBoundsAreValid(so); err != nil {
		problems = append(problems, err.Error())
	}
	if err := kedav1alpha1.CheckFallbackValid(so); err != nil {
		problems = append(problems, err.Error())
	}
	return problems
}

func validatePrometheusRule(rule *monitoringv1.PrometheusRule) []string {
	var problems []string
	for _, group := range rule.Spec.Groups {
		for _, r := range group.Rules {
			if _, err := promql.ParseExpr(r.Expr.String()); err != nil {
				problems = append(problems, fmt.Sprintf("group %s rule %s%s: %v", group.Name, r.Alert, r.Record, err))
			}
			if (r.Alert == "") == (r.Record == "") {
				problems = append(problems, fmt.Sprintf("group %s: a rule needs exactly one of alert or record", group.Name))
			}
		}
	}
	return problems
}

// KafkaTopic is Strimzi's kafka.strimzi.io/v1 KafkaTopic, written from its CRD schema
// (Strimzi publishes no Go API). Unknown fields are errors.
type KafkaTopic struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec *struct {
		TopicName  string         `json:"topicName,omitempty"`
		Partitions *int64         `json:"partitions,omitempty"`
		Replicas   *int64         `json:"replicas,omitempty"`
		Config     map[string]any `json:"config,omitempty"`
	} `json:"spec"`
}

var topicNamePattern = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func validateKafkaTopic(j []byte) []string {
	var topic KafkaTopic
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&topic); err != nil {
		return []string{"strict decoding error: " + err.Error()}
	}
	var problems []string
	if topic.Metadata.Labels["strimzi.io/cluster"] == "" {
		problems = append(problems, "metadata.labels[strimzi.io/cluster] names no Kafka cluster")
	}
	if topic.Spec == nil {
		return append(problems, "spec is required")
	}
	topicName := topic.Spec.TopicName
	if topicName == "" {
		topicName = topic.Metadata.Name
	}
	if !topicNamePattern.MatchString(topicName) {
		problems = append(problems, fmt.Sprintf("topic name %q is not a valid Kafka topic name", topicName))
	}
	if p := topic.Spec.Partitions; p != nil && *p < 1 {
		problems = append(problems, "spec.partitions must be >= 1")
	}
	if r := topic.Spec.Replicas; r != nil && (*r < 1 || *r > 32767) {
		problems = append(problems, "spec.replicas must be in 1..32767")
	}
	for key, value := range topic.Spec.Config {
		switch value.(type) {
		case string, float64, bool:
		default:
			problems = append(problems, fmt.Sprintf("spec.config[%s] must be a string, number or boolean", key))
		}
	}
	return problems
}

// -- Prometheus rules and PromQL -------------------------------------------------------

func validateRuleFiles(paths []string) error {
	if len(paths) == 0 {
		return errors.New("no rule files given")
	}
	var all []string
	for _, path := range paths {
		groups, errs := rulefmt.ParseFile(
			path, false, model.LegacyValidation, promql, slog.New(slog.NewTextHandler(os.Stderr, nil)),
		)
		for _, err := range errs {
			all = append(all, fmt.Sprintf("%s: %v", path, err))
		}
		if groups != nil {
			n := 0
			for _, g := range groups.Groups {
				n += len(g.Rules)
			}
			fmt.Printf("ok    %s: %d groups, %d rules\n", path, len(groups.Groups), n)
		}
	}
	if len(all) > 0 {
		return errors.New(strings.Join(all, "\n"))
	}
	return nil
}

type parsed struct {
	Expr    string   `json:"expr"`
	Error   string   `json:"error,omitempty"`
	Metrics []string `json:"metrics"`
}

func parseExpressions(in io.Reader, out io.Writer) error {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(out)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		var expr string
		if err := json.Unmarshal([]byte(line), &expr); err != nil {
			return fmt.Errorf("input line is not a JSON string: %w", err)
		}
		result := parsed{Expr: expr, Metrics: []string{}}
		node, err := promql.ParseExpr(expr)
		if err != nil {
			result.Error = err.Error()
		} else {
			seen := map[string]bool{}
			parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					name := vs.Name
					if name == "" {
						for _, m := range vs.LabelMatchers {
							if m.Name == "__name__" {
								name = m.Value
							}
						}
					}
					if name != "" && !seen[name] {
						seen[name] = true
						result.Metrics = append(result.Metrics, name)
					}
				}
				return nil
			})
			sort.Strings(result.Metrics)
		}
		if err := enc.Encode(result); err != nil {
			return err
		}
	}
	return scanner.Err()
}

// -- Compose -------------------------------------------------------------------------------

func validateCompose(paths []string) error {
	if len(paths) != 1 {
		return errors.New("usage: k8s-validate compose FILE")
	}
	path, err := filepath.Abs(paths[0])
	if err != nil {
		return err
	}
	details := composetypes.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []composetypes.ConfigFile{{Filename: path}},
		Environment: composetypes.Mapping{},
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("amends", true)
		o.ResolvePaths = true
	})
	if err != nil {
		return err
	}
	type service struct {
		Image   string   `json:"image"`
		Command []string `json:"command"`
		Build   string   `json:"build,omitempty"`
		User    string   `json:"user"`
	}
	out := map[string]service{}
	for name, s := range project.Services {
		entry := service{Image: s.Image, Command: s.Command, User: s.User}
		if s.Build != nil {
			entry.Build = filepath.Join(s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(entry.Build); err != nil {
				return fmt.Errorf("service %s: %w", name, err)
			}
		}
		out[name] = entry
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
