package bh.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.api.model.ExpungeOptions;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.api.server.SystemRequestDetails;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.ServerConnector;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * HAPI FHIR's JPA server (R4, H2 in memory) on embedded Jetty, as a test peer.
 *
 * <pre>
 * java -jar bh-hapi-server.jar [--port 8080] [--host 127.0.0.1] [--exit-on-stdin-eof]
 * </pre>
 *
 * <p>FHIR base {@code http://HOST:PORT/fhir}. {@code POST /__admin/reset} empties it ($expunge everything,
 * 204). With {@code --exit-on-stdin-eof} the process exits when its standard input closes, so it cannot outlive a
 * test run that was killed. It prints {@code hapi-peer listening on <base>} once it serves requests.
 */
public final class Server {
  private Server() {}

  public static void main(String[] args) throws Exception {
    int port = 8080;
    String host = "127.0.0.1";
    boolean exitOnStdinEof = false;
    PrintStream out = System.out;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--port" -> port = Integer.parseInt(args[++i]);
        case "--host" -> host = args[++i];
        case "--exit-on-stdin-eof" -> exitOnStdinEof = true;
        default -> {
          System.err.println("bh-hapi-server: unknown argument " + args[i]);
          System.exit(2);
        }
      }
    }
    if (exitOnStdinEof) {
      watchStdin();
    }
    long started = System.nanoTime();
    AnnotationConfigApplicationContext spring = new AnnotationConfigApplicationContext(JpaConfig.class);
    // $validate: a profile the server does not hold (the mapping declares US Core's, and the US Core package
    // cannot be loaded offline) is a warning, as in the HL7 validator of tests/servers/hl7-validator, instead
    // of HAPI's default error; the resource is still validated against its base R4 definition.
    spring.getBean(FhirInstanceValidator.class).setErrorForUnknownProfiles(false);
    org.eclipse.jetty.server.Server jetty = new org.eclipse.jetty.server.Server();
    ServerConnector connector = new ServerConnector(jetty);
    connector.setHost(host);
    connector.setPort(port);
    jetty.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler();
    context.setContextPath("/");
    context.addServlet(new ServletHolder("fhir", new FhirServlet(spring)), "/fhir/*");
    context.addServlet(new ServletHolder("reset", new ResetServlet(spring)), "/__admin/reset");
    jetty.setHandler(context);
    jetty.setStopAtShutdown(true);
    jetty.start();
    out.printf(
        "hapi-peer listening on http://%s:%d/fhir (started in %.1f s)%n",
        host, port, (System.nanoTime() - started) / 1e9);
    out.flush();
    jetty.join();
  }

  /** Exit when stdin reaches end of file: the parent closed the pipe, or died. */
  private static void watchStdin() {
    Thread watcher =
        new Thread(
            () -> {
              try (InputStream in = System.in) {
                while (in.read() != -1) {
                  // discard: only the end of the stream matters
                }
              } catch (IOException ignored) {
                // a broken pipe is an end of the stream too
              }
              Runtime.getRuntime().halt(0); // no shutdown work: the database lives in memory only
            },
            "stdin-eof-watcher");
    watcher.setDaemon(true);
    watcher.start();
  }

  /** HAPI's RestfulServer with the JPA resource providers, as the jpaserver-starter wires it (minus extras). */
  static final class FhirServlet extends RestfulServer {
    private final transient AnnotationConfigApplicationContext spring;

    FhirServlet(AnnotationConfigApplicationContext spring) {
      super(spring.getBean(FhirContext.class));
      this.spring = spring;
    }

    @Override
    protected void initialize() {
      IFhirSystemDao<?, ?> systemDao = spring.getBean(IFhirSystemDao.class);
      registerProviders(spring.getBean(ResourceProviderFactory.class).createProviders());
      registerProvider(spring.getBean(JpaSystemProvider.class));
      registerProvider(spring.getBean(ValueSetOperationProvider.class));
      setServerConformanceProvider(
          new JpaCapabilityStatementProvider(
              this,
              systemDao,
              spring.getBean(JpaStorageSettings.class),
              spring.getBean(ISearchParamRegistry.class),
              spring.getBean(IValidationSupport.class)));
      setPagingProvider(spring.getBean(DatabaseBackedPagingProvider.class));
      setDefaultResponseEncoding(EncodingEnum.JSON);
      setServerAddressStrategy(new IncomingRequestAddressStrategy());
    }
  }

  /** POST /__admin/reset: every resource, version and search gone ($expunge with expungeEverything). */
  static final class ResetServlet extends HttpServlet {
    private final transient AnnotationConfigApplicationContext spring;

    ResetServlet(AnnotationConfigApplicationContext spring) {
      this.spring = spring;
    }

    @Override
    protected void doPost(HttpServletRequest request, HttpServletResponse response) {
      spring
          .getBean(IFhirSystemDao.class)
          .expunge(new ExpungeOptions().setExpungeEverything(true), new SystemRequestDetails());
      response.setStatus(204);
    }
  }
}
