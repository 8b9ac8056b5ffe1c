package mca.sdk;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.ConfigMapList;
import io.fabric8.kubernetes.api.model.ListOptions;
import io.fabric8.kubernetes.api.model.ListOptionsBuilder;
import io.fabric8.kubernetes.api.model.ManagedFieldsEntry;
import io.fabric8.kubernetes.api.model.SecretList;
import io.fabric8.kubernetes.api.model.Status;
import io.fabric8.kubernetes.api.model.authentication.SelfSubjectReview;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.Version;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * MCA proof-tier program for the fabric8 Kubernetes client: an app that reaches the API only
 * through {@code new KubernetesClientBuilder().build()} and its auto-configuration (env {@code
 * KUBERNETES_SERVICE_HOST}/{@code _PORT} plus the service-account directory). Prints one JSON line
 * per operation; exits 0 even when operations fail.
 */
public final class Main {
  private static final String SDK = "fabric8";
  private static final String NAMESPACE_FILE =
      "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
  private static final String FIELD_MANAGER = "mca-sdk-fabric8";

  private Main() {}

  public static void main(String[] args) throws Exception {
    emit("version", true, "fabric8 kubernetes-client " + Version.clientVersion());

    String ns = Files.readString(Path.of(NAMESPACE_FILE), StandardCharsets.UTF_8).trim();
    String seed = "sdk-" + SDK + "-seed";
    String name = "sdk-" + SDK + "-x";

    // The SDK's default configuration: auto-configured from the environment.
    try (KubernetesClient client = new KubernetesClientBuilder().build()) {
      run(client, ns, seed, name);
    }
    System.out.flush();
    System.exit(0);
  }

  private static void run(KubernetesClient client, String ns, String seed, String name) {
    // whoami
    try {
      SelfSubjectReview review =
          client.authentication().v1().selfSubjectReviews().create(new SelfSubjectReview());
      String user = null;
      if (review.getStatus() != null && review.getStatus().getUserInfo() != null) {
        user = review.getStatus().getUserInfo().getUsername();
      }
      emit("whoami", user != null && !user.isEmpty(), user == null ? "" : user);
    } catch (Exception e) {
      emit("whoami", false, describe(e));
    }

    // get (fabric8 answers a 404 with null, not an exception)
    try {
      ConfigMap cm = client.configMaps().inNamespace(ns).withName(seed).get();
      if (cm == null) {
        emit("get", false, seed + " not found (null)");
      } else {
        emit(
            "get",
            true,
            cm.getMetadata().getName() + " rv=" + cm.getMetadata().getResourceVersion());
      }
    } catch (Exception e) {
      emit("get", false, describe(e));
    }

    // list
    try {
      ConfigMapList list = client.configMaps().inNamespace(ns).list();
      boolean found =
          list.getItems().stream().anyMatch(cm -> seed.equals(cm.getMetadata().getName()));
      emit(
          "list",
          found,
          list.getItems().size() + " items, seed " + (found ? "present" : "missing"));
    } catch (Exception e) {
      emit("list", false, describe(e));
    }

    // create (after removing a leftover)
    String leftover = "";
    try {
      if (!client.configMaps().inNamespace(ns).withName(name).delete().isEmpty()) {
        leftover = " (deleted a leftover first)";
        client
            .configMaps()
            .inNamespace(ns)
            .withName(name)
            .waitUntilCondition(Objects::isNull, 10, TimeUnit.SECONDS);
      }
    } catch (Exception e) {
      leftover = " (deleting a leftover failed: " + describe(e) + ")";
    }
    try {
      ConfigMap body =
          new ConfigMapBuilder()
              .withNewMetadata()
              .withName(name)
              .withNamespace(ns)
              .withLabels(Map.of("sdk", SDK))
              .endMetadata()
              .withData(Map.of("a", "1"))
              .build();
      ConfigMap cm = client.configMaps().inNamespace(ns).resource(body).create();
      emit(
          "create",
          true,
          cm.getMetadata().getName() + " rv=" + cm.getMetadata().getResourceVersion() + leftover);
    } catch (Exception e) {
      emit("create", false, describe(e) + leftover);
    }

    // patch-merge
    try {
      ConfigMap cm =
          client
              .configMaps()
              .inNamespace(ns)
              .withName(name)
              .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"data\":{\"b\":\"2\"}}");
      Map<String, String> data = cm.getData();
      boolean ok = data != null && "1".equals(data.get("a")) && "2".equals(data.get("b"));
      emit("patch-merge", ok, "data=" + data);
    } catch (Exception e) {
      emit("patch-merge", false, describe(e));
    }

    // apply (server-side apply)
    try {
      ConfigMap desired =
          new ConfigMapBuilder()
              .withNewMetadata()
              .withName(name)
              .withNamespace(ns)
              .withLabels(Map.of("sdk", SDK))
              .endMetadata()
              .withData(Map.of("c", "3"))
              .build();
      ConfigMap cm =
          client
              .configMaps()
              .inNamespace(ns)
              .resource(desired)
              .fieldManager(FIELD_MANAGER)
              .forceConflicts()
              .serverSideApply();
      boolean managed = false;
      List<ManagedFieldsEntry> fields = cm.getMetadata().getManagedFields();
      if (fields != null) {
        for (ManagedFieldsEntry f : fields) {
          managed |= FIELD_MANAGER.equals(f.getManager()) && "Apply".equals(f.getOperation());
        }
      }
      Map<String, String> data = cm.getData();
      boolean ok = managed && data != null && "3".equals(data.get("c"));
      emit("apply", ok, "data=" + data + ", manager " + FIELD_MANAGER + " applied=" + managed);
    } catch (Exception e) {
      emit("apply", false, describe(e));
    }

    // watch
    try {
      String[] result = watch(client, ns, name);
      emit("watch", Boolean.parseBoolean(result[0]), result[1]);
    } catch (Exception e) {
      emit("watch", false, describe(e));
    }

    // delete
    try {
      int deleted = client.configMaps().inNamespace(ns).withName(name).delete().size();
      emit("delete", deleted > 0, deleted > 0 ? name + " deleted" : name + " was not there");
    } catch (Exception e) {
      emit("delete", false, describe(e));
    }

    // forbidden
    try {
      SecretList secrets = client.secrets().inNamespace(ns).list();
      emit("forbidden", false, "listing secrets succeeded (" + secrets.getItems().size() + ")");
    } catch (KubernetesClientException e) {
      // Code <= 0: no HTTP answer (I/O or TLS failure), not an API error.
      emit("forbidden", e.getCode() == 403, e.getCode() > 0 ? apiError(e) : describe(e));
    } catch (Exception e) {
      emit("forbidden", false, describe(e));
    }
  }

  /**
   * Watches configmaps labelled sdk=fabric8; once {@code watch()} returned (fabric8 returns when
   * the watch is established) changes {@code name} from another thread and waits up to 20 s for
   * the MODIFIED event.
   */
  private static String[] watch(KubernetesClient client, String ns, String name)
      throws Exception {
    // Start from the object's current version: only later changes are sent.
    String rv =
        client.configMaps().inNamespace(ns).withName(name).get().getMetadata().getResourceVersion();
    CompletableFuture<String[]> result = new CompletableFuture<>();
    List<String> seen = new ArrayList<>();
    long started = System.nanoTime();
    ListOptions options =
        new ListOptionsBuilder()
            .withLabelSelector("sdk=" + SDK)
            .withResourceVersion(rv)
            .withTimeoutSeconds(30L)
            .build();
    Watcher<ConfigMap> watcher =
        new Watcher<>() {
          @Override
          public void eventReceived(Action action, ConfigMap cm) {
            String evName = cm != null && cm.getMetadata() != null ? cm.getMetadata().getName() : null;
            if (action == Action.MODIFIED && name.equals(evName)) {
              long ms = (System.nanoTime() - started) / 1_000_000;
              result.complete(new String[] {"true", "MODIFIED " + name + " after " + ms + " ms"});
            } else if (action == Action.ERROR) {
              result.complete(new String[] {"false", "ERROR event"});
            } else {
              synchronized (seen) {
                seen.add(action + " " + evName);
              }
            }
          }

          @Override
          public void onClose(WatcherException cause) {
            result.complete(
                new String[] {"false", "watch closed: " + describe(cause) + "; saw " + seen});
          }

          @Override
          public void onClose() {
            result.complete(new String[] {"false", "watch closed; saw " + seen});
          }
        };
    ExecutorService pool = Executors.newSingleThreadExecutor();
    try (Watch watch = client.configMaps().inNamespace(ns).watch(options, watcher)) {
      Future<?> writer =
          pool.submit(
              () ->
                  client
                      .configMaps()
                      .inNamespace(ns)
                      .withName(name)
                      .patch(
                          PatchContext.of(PatchType.JSON_MERGE),
                          "{\"data\":{\"watched\":\"yes\"}}"));
      String[] outcome;
      try {
        outcome = result.get(20, TimeUnit.SECONDS);
      } catch (TimeoutException e) {
        synchronized (seen) {
          outcome = new String[] {"false", "no MODIFIED event within 20 s; saw " + seen};
        }
      }
      try {
        writer.get(5, TimeUnit.SECONDS);
      } catch (Exception e) {
        Throwable cause = e.getCause() != null ? e.getCause() : e;
        outcome = new String[] {"false", "modifying failed: " + describe(cause) + "; " + outcome[1]};
      }
      return outcome;
    } finally {
      pool.shutdownNow();
    }
  }

  /** "code reason: message" from the Status the server sent. */
  private static String apiError(KubernetesClientException e) {
    Status status = e.getStatus();
    String reason = status != null && status.getReason() != null ? status.getReason() : "";
    String message =
        status != null && status.getMessage() != null ? status.getMessage() : e.getMessage();
    return head(e.getCode() + " " + reason + ": " + message, 240);
  }

  private static String describe(Throwable e) {
    if (e instanceof KubernetesClientException && ((KubernetesClientException) e).getCode() > 0) {
      return "KubernetesClientException " + apiError((KubernetesClientException) e);
    }
    StringBuilder text = new StringBuilder(e.getClass().getName() + ": " + e.getMessage());
    for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
      text.append(" (caused by ").append(c.getClass().getName()).append(": ");
      text.append(c.getMessage()).append(')');
    }
    return head(text.toString(), 400);
  }

  private static String head(String text, int max) {
    String t = text == null ? "" : text.trim().replace('\n', ' ');
    return t.length() <= max ? t : t.substring(0, max) + "...";
  }

  private static void emit(String op, boolean ok, String detail) {
    System.out.println(
        "{\"op\": " + quote(op) + ", \"ok\": " + ok + ", \"detail\": " + quote(detail) + "}");
    System.out.flush();
  }

  /** A JSON string literal (no JSON library is needed for three fields). */
  private static String quote(String s) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : (s == null ? "" : s).toCharArray()) {
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.append('"').toString();
  }
}
