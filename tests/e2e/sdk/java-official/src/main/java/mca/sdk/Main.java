package mca.sdk;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.reflect.TypeToken;
import io.kubernetes.client.custom.V1Patch;
import io.kubernetes.client.openapi.ApiClient;
import io.kubernetes.client.openapi.ApiException;
import io.kubernetes.client.openapi.apis.AuthenticationV1Api;
import io.kubernetes.client.openapi.apis.CoreV1Api;
import io.kubernetes.client.openapi.models.V1ConfigMap;
import io.kubernetes.client.openapi.models.V1ConfigMapList;
import io.kubernetes.client.openapi.models.V1ObjectMeta;
import io.kubernetes.client.openapi.models.V1SecretList;
import io.kubernetes.client.openapi.models.V1SelfSubjectReview;
import io.kubernetes.client.util.ClientBuilder;
import io.kubernetes.client.util.PatchUtils;
import io.kubernetes.client.util.Watch;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * MCA proof-tier program for the official Kubernetes Java client: an app that reaches the API only
 * through {@code ClientBuilder.cluster()} (env {@code KUBERNETES_SERVICE_HOST}/{@code _PORT} plus
 * the service-account directory). Prints one JSON line per operation; exits 0 even when operations
 * fail.
 */
public final class Main {
  private static final String SDK = "java-official";
  private static final String NAMESPACE_FILE =
      "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
  private static final String FIELD_MANAGER = "mca-sdk-java-official";
  private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

  private Main() {}

  public static void main(String[] args) throws Exception {
    emit("version", true, "client-java " + sdkVersion());

    String ns = Files.readString(Path.of(NAMESPACE_FILE), StandardCharsets.UTF_8).trim();
    // The SDK's in-cluster configuration (same as Config.fromCluster()).
    ApiClient client = ClientBuilder.cluster().build();
    // Watches are long-lived: no client-side read timeout.
    client.setReadTimeout(0);
    CoreV1Api core = new CoreV1Api(client);

    String seed = "sdk-" + SDK + "-seed";
    String name = "sdk-" + SDK + "-x";
    String label = "sdk=" + SDK;

    // whoami
    try {
      V1SelfSubjectReview review =
          new AuthenticationV1Api(client)
              .createSelfSubjectReview(
                  new V1SelfSubjectReview()
                      .apiVersion("authentication.k8s.io/v1")
                      .kind("SelfSubjectReview"))
              .execute();
      String user = null;
      if (review.getStatus() != null && review.getStatus().getUserInfo() != null) {
        user = review.getStatus().getUserInfo().getUsername();
      }
      emit("whoami", user != null && !user.isEmpty(), user == null ? "" : user);
    } catch (Exception e) {
      emit("whoami", false, describe(e));
    }

    // get
    try {
      V1ConfigMap cm = core.readNamespacedConfigMap(seed, ns).execute();
      emit(
          "get",
          true,
          cm.getMetadata().getName() + " rv=" + cm.getMetadata().getResourceVersion());
    } catch (Exception e) {
      emit("get", false, describe(e));
    }

    // list
    try {
      V1ConfigMapList list = core.listNamespacedConfigMap(ns).execute();
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
      core.deleteNamespacedConfigMap(name, ns).execute();
      leftover = " (deleted a leftover first)";
      for (int i = 0; i < 50; i++) {
        try {
          core.readNamespacedConfigMap(name, ns).execute();
          Thread.sleep(100);
        } catch (ApiException gone) {
          if (gone.getCode() == 404) {
            break;
          }
          throw gone;
        }
      }
    } catch (ApiException e) {
      if (e.getCode() != 404) {
        leftover = " (deleting a leftover failed: " + describe(e) + ")";
      }
    } catch (Exception e) {
      leftover = " (deleting a leftover failed: " + describe(e) + ")";
    }
    try {
      V1ConfigMap body =
          new V1ConfigMap()
              .apiVersion("v1")
              .kind("ConfigMap")
              .metadata(new V1ObjectMeta().name(name).namespace(ns).labels(Map.of("sdk", SDK)))
              .data(Map.of("a", "1"));
      V1ConfigMap cm = core.createNamespacedConfigMap(ns, body).execute();
      emit(
          "create",
          true,
          cm.getMetadata().getName() + " rv=" + cm.getMetadata().getResourceVersion() + leftover);
    } catch (Exception e) {
      emit("create", false, describe(e) + leftover);
    }

    // patch-merge
    try {
      V1ConfigMap cm =
          PatchUtils.patch(
              V1ConfigMap.class,
              () ->
                  core.patchNamespacedConfigMap(name, ns, new V1Patch("{\"data\":{\"b\":\"2\"}}"))
                      .buildCall(null),
              V1Patch.PATCH_FORMAT_JSON_MERGE_PATCH,
              client);
      Map<String, String> data = cm.getData();
      boolean ok = data != null && "1".equals(data.get("a")) && "2".equals(data.get("b"));
      emit("patch-merge", ok, "data=" + data);
    } catch (Exception e) {
      emit("patch-merge", false, describe(e));
    }

    // apply (server-side apply)
    try {
      String applied =
          "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\""
              + name
              + "\",\"namespace\":\""
              + ns
              + "\",\"labels\":{\"sdk\":\""
              + SDK
              + "\"}},\"data\":{\"c\":\"3\"}}";
      V1ConfigMap cm =
          PatchUtils.patch(
              V1ConfigMap.class,
              () ->
                  core.patchNamespacedConfigMap(name, ns, new V1Patch(applied))
                      .fieldManager(FIELD_MANAGER)
                      .force(true)
                      .buildCall(null),
              V1Patch.PATCH_FORMAT_APPLY_YAML,
              client);
      // client-java's Gson drops metadata.managedFields on purpose
      // (V1MetadataExclusionStrategy), so the field manager cannot be checked
      // here: a 2xx answer to an apply patch carrying the new key must do.
      Map<String, String> data = cm.getData();
      boolean ok = data != null && "3".equals(data.get("c"));
      emit("apply", ok, "data=" + data + " (fieldManager " + FIELD_MANAGER + ")");
    } catch (Exception e) {
      emit("apply", false, describe(e));
    }

    // watch
    try {
      String[] result = watch(client, core, ns, name, label);
      emit("watch", Boolean.parseBoolean(result[0]), result[1]);
    } catch (Exception e) {
      emit("watch", false, describe(e));
    }

    // delete
    try {
      core.deleteNamespacedConfigMap(name, ns).execute();
      emit("delete", true, name + " deleted");
    } catch (Exception e) {
      emit("delete", false, describe(e));
    }

    // forbidden
    try {
      V1SecretList secrets = core.listNamespacedSecret(ns).execute();
      emit("forbidden", false, "listing secrets succeeded (" + secrets.getItems().size() + ")");
    } catch (ApiException e) {
      // Code 0: no HTTP answer (I/O or TLS failure), not an API error.
      emit("forbidden", e.getCode() == 403, e.getCode() > 0 ? apiError(e) : describe(e));
    } catch (Exception e) {
      emit("forbidden", false, describe(e));
    }

    System.out.flush();
    // OkHttp's non-daemon threads would keep the JVM alive for a while.
    System.exit(0);
  }

  /**
   * Opens a watch on configmaps labelled {@code label}; once it is established (the server answered
   * the request: {@code Watch.createWatch} returns then) changes {@code name} from another thread
   * and waits up to 20 s for the MODIFIED event.
   */
  private static String[] watch(
      ApiClient client, CoreV1Api core, String ns, String name, String label) throws Exception {
    // Start from the object's current version: only later changes are sent.
    String rv = core.readNamespacedConfigMap(name, ns).execute().getMetadata().getResourceVersion();
    long started = System.nanoTime();
    Watch<V1ConfigMap> watch =
        Watch.createWatch(
            client,
            core.listNamespacedConfigMap(ns)
                .labelSelector(label)
                .resourceVersion(rv)
                .timeoutSeconds(30)
                .watch(true)
                .buildCall(null),
            new TypeToken<Watch.Response<V1ConfigMap>>() {}.getType());
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      Future<String> writer =
          pool.submit(
              () -> {
                PatchUtils.patch(
                    V1ConfigMap.class,
                    () ->
                        core.patchNamespacedConfigMap(
                                name, ns, new V1Patch("{\"data\":{\"watched\":\"yes\"}}"))
                            .buildCall(null),
                    V1Patch.PATCH_FORMAT_JSON_MERGE_PATCH,
                    client);
                return "ok";
              });
      List<String> seen = new ArrayList<>();
      Future<String[]> reader =
          pool.submit(
              () -> {
                for (Watch.Response<V1ConfigMap> event : watch) {
                  String evName =
                      event.object != null && event.object.getMetadata() != null
                          ? event.object.getMetadata().getName()
                          : null;
                  if ("MODIFIED".equals(event.type) && name.equals(evName)) {
                    long ms = (System.nanoTime() - started) / 1_000_000;
                    return new String[] {"true", "MODIFIED " + name + " after " + ms + " ms"};
                  }
                  if ("ERROR".equals(event.type)) {
                    return new String[] {"false", "ERROR event: " + event.status};
                  }
                  synchronized (seen) {
                    seen.add(event.type + " " + evName);
                  }
                }
                return new String[] {"false", "watch ended without MODIFIED; saw " + seen};
              });
      String[] result;
      try {
        result = reader.get(20, TimeUnit.SECONDS);
      } catch (TimeoutException e) {
        synchronized (seen) {
          result = new String[] {"false", "no MODIFIED event within 20 s; saw " + seen};
        }
      }
      try {
        writer.get(5, TimeUnit.SECONDS);
      } catch (Exception e) {
        Throwable cause = e.getCause() != null ? e.getCause() : e;
        result = new String[] {"false", "modifying failed: " + describe(cause) + "; " + result[1]};
      }
      return result;
    } finally {
      try {
        watch.close();
      } catch (Exception ignored) {
        // Closing an aborted stream may fail; irrelevant here.
      }
      pool.shutdownNow();
    }
  }

  private static String sdkVersion() {
    String resource = "/META-INF/maven/io.kubernetes/client-java/pom.properties";
    try (InputStream in = ApiClient.class.getResourceAsStream(resource)) {
      if (in != null) {
        Properties props = new Properties();
        props.load(in);
        return props.getProperty("version", "unknown");
      }
    } catch (Exception ignored) {
      // Fall through.
    }
    String v = ApiClient.class.getPackage().getImplementationVersion();
    return v == null ? "unknown" : v;
  }

  /** "code reason: message" from the Status the server sent. */
  private static String apiError(ApiException e) {
    String reason = "";
    String message = e.getMessage();
    try {
      JsonObject status = JsonParser.parseString(e.getResponseBody()).getAsJsonObject();
      if (status.has("reason")) {
        reason = status.get("reason").getAsString();
      }
      if (status.has("message")) {
        message = status.get("message").getAsString();
      }
    } catch (Exception ignored) {
      // Not a Status body: keep the exception's message.
    }
    return head(e.getCode() + " " + reason + ": " + message, 240);
  }

  private static String describe(Throwable e) {
    if (e instanceof ApiException && ((ApiException) e).getCode() > 0) {
      return "ApiException " + apiError((ApiException) e);
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
    JsonObject line = new JsonObject();
    line.addProperty("op", op);
    line.addProperty("ok", ok);
    line.addProperty("detail", detail == null ? "" : detail);
    System.out.println(GSON.toJson(line));
    System.out.flush();
  }
}
